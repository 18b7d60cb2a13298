//go:build !amd64

package dax

// Without the amd64 instructions, writing cache lines back is left to the kernel: msync of a
// DAX mapping writes back the CPU cache lines of its dirty pages (and of a plain mapping, the
// pages), which is correct on every architecture, at the cost of a system call per write.

// cpuPersister is the real persister: msync for everything.
type cpuPersister struct {
	mem []byte // the whole mapping
}

func newCPUPersister(mem []byte) cpuPersister { return cpuPersister{mem: mem} }

func (c cpuPersister) writeBack(b []byte) error { return msyncRange(c.mem, b) }
func (c cpuPersister) streamed([]byte)          {}
func (c cpuPersister) fence()                   {}
func (c cpuPersister) msync(b []byte) error     { return msyncRange(c.mem, b) }
func (c cpuPersister) name() string             { return "msync" }
