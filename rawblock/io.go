package rawblock

import (
	"errors"
	"fmt"

	"kvresp/slab"
)

// Entry I/O. An entry is written from at most two buffers: a small one of the engine's (header
// and key, or the whole entry when it fits in one) and the caller's value buffer, whose
// capacity slab rounds up to 4 KiB, so the value's last block can be written straight from it
// (the padding bytes are whatever the buffer held; the checksum covers the value only). Reads
// mirror this: up to ioBufSize in one read, copied out; larger entries in two reads issued
// together, the value landing in its own buffer.
//
// A large value's checksum is computed while the value moves, not after: a write hands the
// value to the device from another goroutine while it hashes it. On a device that copies by
// CPU (CPUCopier: DAX, memory) a read does likewise (see readHashed); elsewhere it hashes after
// the read, since the device's DMA leaves no CPU pass to overlap.

// directMin is the smallest value written from and read into its own buffer. Anything smaller
// goes through an I/O buffer: slab carves buffers of 16 KiB and less out of shared pages,
// without block alignment, and copying 48 KiB costs less than a second I/O.
const directMin = 48 << 10

// How readHashed reads a large value from a CPUCopier device, in chunks that are multiples of
// hashPiece. Up to cpuStreamMin, one goroutine copies a cpuReadChunk and hashes it, again and
// again: copied with cached stores (Go's memmove on amd64 uses them below 1 MiB), the chunk is
// still in the CPU's own cache (L2: 512 KiB and more on current x86) for the hash, and the
// destination, a buffer that is reused, is likely in the last-level cache already. A larger
// value is copied a cpuStreamChunk at a time by another goroutine with non-temporal stores
// (memmove's, from 1 MiB), which do not first read a destination that is not in any cache,
// while this one hashes each chunk as soon as it is there: the two run at memory speed on two
// cores. Measured on the 2-core development machine (go test -bench DaxTier ./dax/): for
// 4 MiB the first way reads at about 0.65 times memmove and the second at 0.5; for 32 MiB the
// first at 0.5, the second at 0.65 to 0.75.
const (
	cpuReadChunk   = 256 << 10
	cpuStreamChunk = 1 << 20
	cpuStreamMin   = 8 << 20
)

var (
	errStale    = errors.New("rawblock: index slot is stale")
	errKeyOther = errors.New("rawblock: entry holds another key")
)

// entryLoc is where an entry lives, as the index records it, plus what readers check.
type entryLoc struct {
	region int
	v      ival
	epoch  uint64
	gen    uint64
}

// writeEntry writes an entry into space s. value may be nil (a tombstone, or a reinsertion
// that passes raw bytes in buf instead).
func (e *Engine) writeEntry(s slot, c Class, key string, h entryHeader, value []byte) error {
	inline, hk, total := layout(len(key), h.valueLen, e.bs)
	off := e.regionOff(s.r.idx) + s.off
	buf := e.getBuf()
	defer e.putBuf(buf)
	p := buf.Bytes()
	if inline {
		h.flags |= entryInline
	}
	h.encodeBody(p)
	copy(p[headerLen:], key)
	if inline || h.valueLen < directMin {
		h.setHash(p, dataHash(p, key, value))
		if inline {
			n := headerLen + len(key) + copy(p[headerLen+len(key):], value)
			clear(p[n:total])
		} else {
			clear(p[headerLen+len(key) : hk])
			n := copy(p[hk:], value)
			clear(p[hk+int64(n) : total])
		}
		return e.write(p[:total], off, c)
	}
	// A large value is written while its hash is computed (the hash is a CPU pass over as many
	// bytes as the write moves); the header, which carries the hash, follows. A crash between
	// the two leaves an entry whose header does not check, which recovery skips.
	clear(p[headerLen+len(key) : hk])
	vp := value[:roundUp64(h.valueLen, e.bs)] // within cap: see the comment above
	errc := make(chan error, 1)
	go func() { errc <- e.write(vp, off+hk, c) }()
	h.setHash(p, dataHash(p, key, value))
	err := e.write(p[:hk], off, c)
	return errors.Join(err, <-errc)
}

// readEntry reads the entry at loc and checks it: header, epoch, key (unless key is ""), and,
// when a is not nil, the checksum. The value comes back in a new buffer of a: e.arena for a
// client's read, e.rarena for reclaim's. It returns the header and the stored key.
func (e *Engine) readEntry(loc entryLoc, key string, a *slab.Arena) (entryHeader, string, *slab.Buf, error) {
	wantValue := a != nil
	off := e.regionOff(loc.region) + int64(loc.v.off512)*512
	hk := int64(loc.v.hk512) * 512
	total := hk
	if loc.v.flags&ixInline == 0 && wantValue {
		total += roundUp64(loc.v.vlen, e.bs)
	}
	buf := e.getBuf()
	defer e.putBuf(buf)
	p := buf.Bytes()
	var val *slab.Buf
	if total <= ioBufSize {
		if err := e.read(p[:total], off); err != nil {
			return entryHeader{}, "", nil, err
		}
	} else {
		var err error
		if val, err = a.Alloc(int(loc.v.vlen)); err != nil {
			return entryHeader{}, "", nil, err
		}
		vn := roundUp64(loc.v.vlen, e.bs)
		if int64(val.Cap()) < vn || val.Cap() <= 16<<10 {
			val.Release()
			return entryHeader{}, "", nil, fmt.Errorf("BUG: rawblock: arena buffer of %d bytes for a %d-byte value", val.Cap(), loc.v.vlen)
		}
		if e.cpuCopy {
			h, k, err := e.readHashed(p[:hk], val.Bytes()[:vn], loc, key, off)
			if err != nil {
				val.Release()
				return h, k, nil, err
			}
			return h, k, val, nil
		}
		errc := make(chan error, 1)
		go func() { errc <- e.read(p[:hk], off) }()
		err = e.read(val.Bytes()[:vn], off+hk)
		if err = errors.Join(err, <-errc); err != nil {
			val.Release()
			return entryHeader{}, "", nil, err
		}
	}
	h, k, err := e.checkHeader(p[:hk], loc, key)
	if err == nil && wantValue {
		var v []byte
		if val != nil {
			v = val.Bytes()
		} else if h.flags&entryInline != 0 {
			v = p[headerLen+h.keyLen : int64(headerLen+h.keyLen)+h.valueLen]
		} else {
			v = p[hk : hk+h.valueLen]
		}
		if dataHash(p, k, v) != h.dataHash {
			err = fmt.Errorf("%w: entry at %d in region %d", ErrChecksum, loc.v.off512*512, loc.region)
		} else if val == nil {
			if val, err = a.Alloc(len(v)); err == nil {
				copy(val.Bytes(), v)
			}
		}
	}
	if err != nil {
		if val != nil {
			val.Release()
		}
		return h, k, nil, err
	}
	return h, k, val, nil
}

// readHashed reads the entry at loc, whose value is large, on a CPUCopier device: the header
// part into p, checked, then the value into v (its length rounded up to the block size),
// hashed as it is copied (see cpuReadChunk).
func (e *Engine) readHashed(p, v []byte, loc entryLoc, key string, off int64) (entryHeader, string, error) {
	if err := e.read(p, off); err != nil {
		return entryHeader{}, "", err
	}
	h, k, err := e.checkHeader(p, loc, key)
	if err != nil {
		return h, k, err
	}
	hk := int64(len(p))
	d := newDigest(p, k)
	hash := func(at int64, n int) { d.add(v[at:min(at+int64(n), h.valueLen)]) }
	e.c.reads.Add(1)
	e.c.readBytes.Add(uint64(len(v)))
	if h.valueLen < cpuStreamMin {
		err = inChunks(v, cpuReadChunk, func(q []byte, at int64) error {
			if err := e.dev.ReadAt(q, off+hk+at); err != nil {
				return err
			}
			hash(at, len(q))
			return nil
		})
	} else {
		copied := make(chan int64, len(v)/cpuStreamChunk+1)
		errc := make(chan error, 1)
		go func() {
			defer close(copied)
			errc <- inChunks(v, cpuStreamChunk, func(q []byte, at int64) error {
				if err := e.dev.ReadAt(q, off+hk+at); err != nil {
					return err
				}
				copied <- at
				return nil
			})
		}()
		for at := range copied {
			hash(at, cpuStreamChunk)
		}
		err = <-errc
	}
	if err != nil {
		e.c.ioErrs.Add(1)
		return h, k, fmt.Errorf("rawblock: cannot read %d bytes at %d: %w", len(v), off+hk, err)
	}
	if d.sum != h.dataHash {
		return h, k, fmt.Errorf("%w: entry at %d in region %d", ErrChecksum, loc.v.off512*512, loc.region)
	}
	return h, k, nil
}

// inChunks calls fn with each successive chunk of p, of chunk bytes but the last, and its
// offset in p, until fn fails. The caller counts the whole as one device read or write.
func inChunks(p []byte, chunk int, fn func(q []byte, at int64) error) error {
	for at := 0; at < len(p); at += chunk {
		if err := fn(p[at:min(at+chunk, len(p))], int64(at)); err != nil {
			return err
		}
	}
	return nil
}

// checkHeader validates the header part p of the entry at loc.
func (e *Engine) checkHeader(p []byte, loc entryLoc, key string) (entryHeader, string, error) {
	h, err := parseEntryHeader(p)
	if err != nil {
		return h, "", err
	}
	if h.epoch != loc.epoch {
		return h, "", errStale
	}
	inline, hk, _ := layout(h.keyLen, h.valueLen, e.bs)
	if inline != (h.flags&entryInline != 0) || hk != int64(loc.v.hk512)*512 || h.valueLen != loc.v.vlen {
		return h, "", fmt.Errorf("%w: entry header does not match its index slot", ErrCorrupt)
	}
	k := string(p[headerLen : headerLen+h.keyLen])
	if key != "" && k != key {
		return h, k, errKeyOther
	}
	return h, k, nil
}
