package dax

import "kvresp/slab"

// Cache-line write-back on amd64, chosen once from CPUID: CLWB (writes the line back and may
// keep it cached: the next read of a value just written still hits), else CLFLUSHOPT (writes
// back and evicts, weakly ordered: many in flight at once), else CLFLUSH (evicts, each one
// ordered: the slowest). CLWB and CLFLUSHOPT are ordered by SFENCE; CLFLUSH needs nothing more,
// but the fence costs little and keeps one code path.

// Line write-back instructions, in order of preference.
const (
	opCLFLUSH = iota
	opCLFLUSHOPT
	opCLWB
)

var opNames = [...]string{opCLFLUSH: "clflush", opCLFLUSHOPT: "clflushopt", opCLWB: "clwb"}

// CPUID bits (Intel SDM vol. 2A, CPUID).
const (
	cpuid7EBXCLFLUSHOPT = 1 << 23 // leaf 7, sub-leaf 0, EBX
	cpuid7EBXCLWB       = 1 << 24
)

// lineOp and lineSize are the CPU's best write-back instruction and its line size.
var lineOp, lineSize = detectFlush()

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
func clwbLines(addr, n, step uintptr)
func clflushoptLines(addr, n, step uintptr)
func clflushLines(addr, n, step uintptr)
func sfence()

func detectFlush() (op int, line uintptr) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	_, ebx1, _, _ := cpuid(1, 0)
	// Leaf 1 EBX bits 15:8: the CLFLUSH line size in 8-byte units (64 bytes on every x86-64 so
	// far); a CPU that reports none gets the smallest line any x86 has had, which can only
	// write some lines back twice.
	line = uintptr(ebx1>>8&0xff) * 8
	if line == 0 {
		line = 32
	}
	op = opCLFLUSH
	if maxLeaf >= 7 {
		_, ebx7, _, _ := cpuid(7, 0)
		switch {
		case ebx7&cpuid7EBXCLWB != 0:
			op = opCLWB
		case ebx7&cpuid7EBXCLFLUSHOPT != 0:
			op = opCLFLUSHOPT
		}
	}
	return op, line
}

// writeLines writes back every cache line overlapping b with instruction op. b is in a
// mapping outside the Go heap, so its address stays valid across the call.
func writeLines(op int, b []byte) {
	if len(b) == 0 {
		return
	}
	start := slab.Addr(b) &^ (lineSize - 1)
	n := (slab.Addr(b) + uintptr(len(b)) - start + lineSize - 1) / lineSize
	switch op {
	case opCLWB:
		clwbLines(start, n, lineSize)
	case opCLFLUSHOPT:
		clflushoptLines(start, n, lineSize)
	default:
		clflushLines(start, n, lineSize)
	}
}

// cpuPersister is the real persister: CPU write-back and fence, and msync.
type cpuPersister struct {
	op  int
	mem []byte // the whole mapping, for msync
}

func newCPUPersister(mem []byte) cpuPersister { return cpuPersister{op: lineOp, mem: mem} }

func (c cpuPersister) writeBack(b []byte) error { writeLines(c.op, b); return nil }
func (c cpuPersister) streamed([]byte)          {}
func (c cpuPersister) fence()                   { sfence() }
func (c cpuPersister) msync(b []byte) error     { return msyncRange(c.mem, b) }
func (c cpuPersister) name() string             { return opNames[c.op] }
