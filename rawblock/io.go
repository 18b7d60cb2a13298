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
// A large value's checksum is computed while the value moves, not after. On a device that
// copies by CPU (CPUCopier: DAX, memory) it is the copy itself that checksums: each 64-byte
// stripe is loaded once, hashed and stored (dataDigest.copyAdd), for reads and writes alike.
// Elsewhere a write hands the value to the device from another goroutine while it hashes it,
// and a read hashes after the read, since the device's DMA leaves no CPU pass to overlap.

// directMin is the smallest value written from and read into its own buffer. Anything smaller
// goes through an I/O buffer: slab carves buffers of 16 KiB and less out of shared pages,
// without block alignment, and copying 48 KiB costs less than a second I/O.
const directMin = 48 << 10

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
	if e.cpu != nil {
		d := newDigest(p, key)
		if err := e.writeWith(vp, off+hk, c, d.mover(int(h.valueLen))); err != nil {
			return err
		}
		h.setHash(p, d.sum)
		return e.write(p[:hk], off, c)
	}
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
		if val, err = a.AllocValue(int(loc.v.vlen)); err != nil {
			return entryHeader{}, "", nil, err
		}
		vn := roundUp64(loc.v.vlen, e.bs)
		if int64(val.Cap()) < vn || val.Cap() <= 16<<10 {
			val.Release()
			return entryHeader{}, "", nil, fmt.Errorf("BUG: rawblock: arena buffer of %d bytes for a %d-byte value", val.Cap(), loc.v.vlen)
		}
		if e.cpu != nil {
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
			if val, err = a.AllocValue(len(v)); err == nil {
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

// readHashed reads the entry at loc, whose value is large, from a CPUCopier device: the header
// part into p, checked, then the value into v (its length rounded up to the block size),
// hashed as it is copied.
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
	if err := e.readWith(v, off+hk, d.mover(int(h.valueLen))); err != nil {
		return h, k, err
	}
	if d.sum != h.dataHash {
		return h, k, fmt.Errorf("%w: entry at %d in region %d", ErrChecksum, loc.v.off512*512, loc.region)
	}
	return h, k, nil
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
