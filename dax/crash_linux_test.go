//go:build linux

package dax

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"kvresp/rawblock"
	"kvresp/slab"
)

// recorder is a persister that writes nothing back: it keeps a copy of what a power cut would
// leave for sure (durable) and builds crash images from it. Cache-line mode: writeBack takes a
// snapshot of each line, fence makes the snapshots durable. Plain-file mode: msync makes its
// pages durable at once. Real fences order only the issuing CPU's write-backs; here one fence
// persists every snapshot taken so far, which is more lenient only for writes still in flight
// (their own fence comes before WriteAt returns, so no acknowledged write depends on it).
type recorder struct {
	mu      sync.Mutex
	mem     []byte // the device's mapping
	durable []byte
	pending map[int64][]byte // line offset → snapshot taken by writeBack, not fenced yet
	written int              // lines snapshot
	fences  int
	msyncs  int
}

const testLine = 64

func (r *recorder) off(b []byte) int64 { return int64(slab.Addr(b) - slab.Addr(r.mem)) }

func (r *recorder) writeBack(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	off := r.off(b)
	for l := off &^ (testLine - 1); l < off+int64(len(b)); l += testLine {
		r.pending[l] = bytes.Clone(r.mem[l : l+testLine])
		r.written++
	}
	return nil
}

// streamed: non-temporal stores reach the media at the next fence, like lines written back.
func (r *recorder) streamed(b []byte) { _ = r.writeBack(b) }

func (r *recorder) fence() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for l, snap := range r.pending {
		copy(r.durable[l:], snap)
	}
	clear(r.pending)
	r.fences++
}

func (r *recorder) msync(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	off := r.off(b)
	start := off &^ (BlockSize - 1)
	copy(r.durable[start:off+int64(len(b))], r.mem[start:off+int64(len(b))])
	r.msyncs++
	return nil
}

func (r *recorder) name() string { return "recorder" }

// tear says what a power cut leaves of a line written since it was last made durable.
type tear uint8

const (
	tearRealistic tear = iota // each line old or new, or torn at 8-byte words (pmem's atomicity)
	tearGarbage               // as above, or random bytes where old and new differ
)

// newCrashDevice returns a Device in cache-line mode (lines) or plain-file mode over an
// anonymous mapping holding image, all of it durable, and its recorder.
func newCrashDevice(t testing.TB, image []byte, lines bool) (*Device, *recorder) {
	t.Helper()
	mem := newTestMapping(t, len(image))
	copy(mem, image)
	r := &recorder{mem: mem, durable: bytes.Clone(image), pending: map[int64][]byte{}}
	mode := ModeFile
	if lines {
		mode = ModeFSDAX
	}
	d := newDevice(deviceParams{path: "(memory)", mode: mode, mapSync: lines, lines: lines, align: BlockSize, mem: mem, p: r, log: quiet})
	return d, r
}

// crashImage returns the device's contents as a power cut now could leave them: the durable
// bytes, and for every line that differs from them (written, not made durable), a choice by
// seed among the old bytes, the new ones, a mix of the two by 8-byte words and, with
// tearGarbage, random bytes where they differ. It waits for writes in flight.
func crashImage(d *Device, r *recorder, seed uint64, how tear) []byte {
	d.mu.Lock() // no call in flight
	defer d.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	img := bytes.Clone(r.durable)
	choices := 3
	if how == tearGarbage {
		choices = 4
	}
	for l := 0; l < len(img); l += testLine {
		old, cur := img[l:l+testLine], r.mem[l:l+testLine]
		if bytes.Equal(old, cur) {
			continue
		}
		switch rng.IntN(choices) {
		case 0: // lost
		case 1:
			copy(old, cur)
		case 2:
			for w := 0; w < testLine; w += 8 {
				if rng.IntN(2) == 0 {
					copy(old[w:w+8], cur[w:w+8])
				}
			}
		case 3:
			for i := range old {
				if old[i] != cur[i] {
					old[i] = byte(rng.Uint32())
				}
			}
		}
	}
	return img
}

// keyState is the model of one key: its value (nil = absent) as of the last acknowledged
// durable point, and the values written since.
type keyState struct {
	durable []byte
	later   [][]byte
}

// TestCrash runs the log's write storms over a device that keeps only what was made durable:
// in cache-line mode (fsdax, devdax: WriteAt writes lines back and fences) and in plain-file
// mode (Flush msyncs what was written). After each storm a power-cut image is taken and
// reopened: with Options.Sync every acknowledged key must be there exactly; without, every key
// holds its last durable value or one written since; never other bytes.
func TestCrash(t *testing.T) {
	for _, lines := range []bool{true, false} {
		for _, syncMode := range []bool{true, false} {
			for _, how := range []tear{tearRealistic, tearGarbage} {
				name := fmt.Sprintf("lines=%v/sync=%v/garbage=%v", lines, syncMode, how == tearGarbage)
				t.Run(name, func(t *testing.T) { crashRounds(t, lines, syncMode, how) })
			}
		}
	}
}

func crashRounds(t *testing.T, lines, syncMode bool, how tear) {
	const (
		keys    = 64
		workers = 4
		rounds  = 6
	)
	a := newArena(t)
	model := make([]keyState, keys)
	img := make([]byte, 48<<20)
	rng := rand.New(rand.NewPCG(7, uint64(how)))
	var written, fences, msyncs int
	for round := 0; round < rounds; round++ {
		dev, rec := newCrashDevice(t, img, lines)
		e := openEngine(t, dev, a, false, func(o *rawblock.Options) { o.Sync = syncMode })
		for k := range model {
			got := get(t, e, key(k))
			ok := bytes.Equal(got, model[k].durable)
			for _, v := range model[k].later {
				ok = ok || bytes.Equal(got, v)
			}
			if !ok {
				t.Fatalf("round %d: key %d: got %d bytes, neither the durable value (%d bytes) nor one of the %d written since", round, k, len(got), len(model[k].durable), len(model[k].later))
			}
			model[k] = keyState{durable: got}
		}
		if err := e.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for phase := 0; phase < 4; phase++ {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for w := 0; w < workers; w++ {
				seed := rng.Uint64()
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(seed, 3))
					for op := 0; op < 30; op++ {
						k := r.IntN(keys/workers)*workers + w
						var v []byte
						if r.IntN(5) == 0 {
							if _, err := e.Delete(key(k)); err != nil {
								t.Errorf("delete: %v", err)
								return
							}
						} else {
							n := 1 + r.IntN(3*BlockSize)
							if r.IntN(6) == 0 {
								n = 48<<10 + r.IntN(160<<10) // written from its own buffer, several checksum pieces
							}
							v = value(n, r.Int())
							if err := put(t, e, a, key(k), v); err != nil {
								t.Errorf("put: %v", err)
								return
							}
						}
						mu.Lock()
						if syncMode {
							model[k] = keyState{durable: v}
						} else {
							model[k].later = append(model[k].later, v)
						}
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			if !syncMode && rng.IntN(2) == 0 {
				if err := e.Sync(); err != nil {
					t.Fatal(err)
				}
				for k := range model {
					if n := len(model[k].later); n > 0 {
						model[k] = keyState{durable: model[k].later[n-1]}
					}
				}
			}
		}
		img = crashImage(dev, rec, rng.Uint64(), how)
		e.Close()
		written, fences, msyncs = written+rec.written, fences+rec.fences, msyncs+rec.msyncs
	}
	// The test is only as good as the device's use of the flush path it claims.
	if lines && (written == 0 || fences == 0 || msyncs != 0) || !lines && (written != 0 || msyncs == 0) {
		t.Fatalf("lines=%v: %d lines written back, %d fences, %d msyncs", lines, written, fences, msyncs)
	}
}
