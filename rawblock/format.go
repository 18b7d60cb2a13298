package rawblock

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/zeebo/xxh3"

	"kvresp/internal/hashcopy"
)

// On-media format, version 2 (DESIGN.md §4). All integers are little endian.
//
//	offset 0     superblock copy A (one 4 KiB slot)
//	offset 4096  superblock copy B
//	offset 1 MiB region 0, region 1, ... each RegionSize bytes
//
// A region starts with a region header block (device ID, epoch, class) and ends with a trailer
// (the last 64 bytes of its last block) preceded by the summary body; entries are appended
// from the second block. The epoch is the sequence number taken when the region was opened;
// every entry and the trailer carry it, so bytes left by an earlier use of the region (a trim
// need not zero them) never pass for live data. A region is sealed when its trailer is valid,
// open when only its header is, and free otherwise.
//
// Checksums: an entry's data (header body, key, value) has the chained xxh3-64 of dataDigest;
// everything else (superblock, region header, entry header, summary, trailer: small records)
// has xxhash64. Version 1 used xxhash64 for entry data too; that hash bounded the DAX tier at
// about 10 GB/s where xxh3 runs at 40 GB/s and more, so version 2 is a different format, and a
// version 1 log is refused with ErrOldFormat rather than read (see there).
const (
	formatVersion = 2
	superMagic    = 0x314b4c4252564b00 // "\x00KVRBLK1"
	regionMagic   = 0x314e474552564b00 // "\x00KVREGN1"
	trailerMagic  = 0x314d555352564b00 // "\x00KVRSUM1"
	entryMagic    = 0x31455652         // "RVE1"

	superSlot = 4096 // each superblock copy owns a 4 KiB slot: one block of either size
	// dataStart is where region 0 begins: 1 MiB keeps regions aligned to the erase and stripe
	// granules of common SSDs and RAID layouts whatever the region size.
	dataStart = 1 << 20

	superLen   = 80
	regionLen  = 40
	headerLen  = 64 // entry header
	trailerLen = 64
	sumFixed   = 32 // summary record without its key

	// maxKeyLen keeps header+key within 16 KiB (32 units of 512 bytes in the index). KV-cache
	// keys are ~100 bytes; a longer key is refused with tiers.ErrTooLarge.
	maxKeyLen = 16<<10 - headerLen
	// maxRegionSize is what the index's 22-bit offset (in 512-byte units) can address.
	maxRegionSize = 2 << 30
	// maxRegions is what the index's 20-bit region number can address.
	maxRegions = 1 << 20
)

// Entry flags.
const (
	entryTombstone = 1 << 0
	entryInline    = 1 << 1 // header, key and value packed together
)

var (
	// ErrForeign is returned by Open for a device that holds something else.
	ErrForeign = errors.New("rawblock: device holds data that is not a kvresp rawblock log (set Options.Format to erase it)")
	// ErrNewerFormat is returned by Open for a log written by a newer kvresp.
	ErrNewerFormat = errors.New("rawblock: device holds a log of a newer format version than this kvresp understands")
	// ErrOldFormat is returned by Open (and Check) for a log of an older format version: one
	// whose entries carry another checksum. It is a cache, so nothing is converted: erasing it
	// (Options.Format) starts the tier empty. Reading both checksums instead would keep a
	// second verification path, and its tests, for the life of the format, for a tier that
	// refills as it is used.
	ErrOldFormat = errors.New("rawblock: device holds a log of an older format version (its entries carry another checksum), which this kvresp does not read")
	// ErrCorrupt reports a record that failed validation.
	ErrCorrupt = errors.New("rawblock: corrupt record")
	// ErrChecksum reports an entry whose checksum does not match its bytes.
	ErrChecksum = errors.New("rawblock: checksum mismatch")
)

var le = binary.LittleEndian

// superblock is the device's identity and geometry.
type superblock struct {
	version     uint32
	blockSize   uint32
	regionSize  int64
	regionCount uint32
	uuid        [16]byte
	created     int64 // Unix ms
	generation  uint64
	dataStart   int64
}

func (s *superblock) devID() uint64 { return xxhash.Sum64(s.uuid[:]) }

func (s *superblock) encode(b []byte) {
	clear(b[:superLen])
	le.PutUint64(b[0:], superMagic)
	le.PutUint32(b[8:], s.version)
	le.PutUint32(b[12:], s.blockSize)
	le.PutUint64(b[16:], uint64(s.regionSize))
	le.PutUint32(b[24:], s.regionCount)
	copy(b[32:48], s.uuid[:])
	le.PutUint64(b[48:], uint64(s.created))
	le.PutUint64(b[56:], s.generation)
	le.PutUint64(b[64:], uint64(s.dataStart))
	le.PutUint64(b[72:], xxhash.Sum64(b[:72]))
}

// parseSuper validates one superblock copy.
func parseSuper(b []byte) (superblock, error) {
	var s superblock
	if len(b) < superLen {
		return s, fmt.Errorf("%w: short superblock", ErrCorrupt)
	}
	if le.Uint64(b[0:]) != superMagic {
		return s, ErrForeign
	}
	if le.Uint64(b[72:]) != xxhash.Sum64(b[:72]) {
		return s, fmt.Errorf("%w: superblock checksum", ErrCorrupt)
	}
	s.version = le.Uint32(b[8:])
	if s.version > formatVersion {
		return s, fmt.Errorf("%w (version %d > %d)", ErrNewerFormat, s.version, formatVersion)
	}
	if s.version != 0 && s.version < formatVersion {
		return s, fmt.Errorf("%w (version %d < %d)", ErrOldFormat, s.version, formatVersion)
	}
	s.blockSize = le.Uint32(b[12:])
	s.regionSize = int64(le.Uint64(b[16:]))
	s.regionCount = le.Uint32(b[24:])
	copy(s.uuid[:], b[32:48])
	s.created = int64(le.Uint64(b[48:]))
	s.generation = le.Uint64(b[56:])
	s.dataStart = int64(le.Uint64(b[64:]))
	bs := int64(s.blockSize)
	switch {
	case s.version == 0:
		return s, fmt.Errorf("%w: superblock version 0", ErrCorrupt)
	case bs != 512 && bs != 4096:
		return s, fmt.Errorf("%w: superblock block size %d", ErrCorrupt, bs)
	case s.regionSize < 4*bs || s.regionSize%bs != 0 || s.regionSize > maxRegionSize:
		return s, fmt.Errorf("%w: superblock region size %d", ErrCorrupt, s.regionSize)
	case s.regionCount == 0 || s.regionCount > maxRegions:
		return s, fmt.Errorf("%w: superblock region count %d", ErrCorrupt, s.regionCount)
	case s.dataStart < 2*superSlot || s.dataStart%bs != 0:
		return s, fmt.Errorf("%w: superblock data offset %d", ErrCorrupt, s.dataStart)
	}
	return s, nil
}

// regionHeader opens a region.
type regionHeader struct {
	devID  uint64
	epoch  uint64
	region uint32
	class  Class
}

func (h *regionHeader) encode(b []byte) {
	clear(b[:regionLen])
	le.PutUint64(b[0:], regionMagic)
	le.PutUint64(b[8:], h.devID)
	le.PutUint64(b[16:], h.epoch)
	le.PutUint32(b[24:], h.region)
	b[28] = byte(h.class)
	le.PutUint64(b[32:], xxhash.Sum64(b[:32]))
}

func parseRegionHeader(b []byte) (regionHeader, error) {
	var h regionHeader
	if len(b) < regionLen || le.Uint64(b[0:]) != regionMagic || le.Uint64(b[32:]) != xxhash.Sum64(b[:32]) {
		return h, fmt.Errorf("%w: region header", ErrCorrupt)
	}
	h.devID = le.Uint64(b[8:])
	h.epoch = le.Uint64(b[16:])
	h.region = le.Uint32(b[24:])
	h.class = Class(b[28])
	if h.class >= numClasses {
		return h, fmt.Errorf("%w: region header class %d", ErrCorrupt, h.class)
	}
	return h, nil
}

// entryHeader starts every entry. The data hash covers the header's first 48 bytes, the key
// and the value; the header hash covers the first 56, so a scan can trust the lengths before
// reading the value.
type entryHeader struct {
	flags    uint8
	keyLen   int
	valueLen int64
	seq      uint64
	expireAt int64
	epoch    uint64
	dataHash uint64
}

func (h *entryHeader) encode(b []byte) {
	h.encodeBody(b)
	h.setHash(b, h.dataHash)
}

// encodeBody writes the header's first 48 bytes: what dataHash covers along with key and value.
func (h *entryHeader) encodeBody(b []byte) {
	clear(b[:headerLen])
	le.PutUint32(b[0:], entryMagic)
	b[4] = formatVersion
	b[5] = h.flags
	le.PutUint32(b[8:], uint32(h.keyLen))
	le.PutUint64(b[16:], uint64(h.valueLen))
	le.PutUint64(b[24:], h.seq)
	le.PutUint64(b[32:], uint64(h.expireAt))
	le.PutUint64(b[40:], h.epoch)
}

// setHash completes a header whose body b holds: the data hash, then the header's own.
func (h *entryHeader) setHash(b []byte, dataHash uint64) {
	h.dataHash = dataHash
	le.PutUint64(b[48:], dataHash)
	le.PutUint64(b[56:], xxhash.Sum64(b[:56]))
}

// parseEntryHeader validates an entry header (not its data hash).
func parseEntryHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) < headerLen || le.Uint32(b[0:]) != entryMagic || le.Uint64(b[56:]) != xxhash.Sum64(b[:56]) {
		return h, fmt.Errorf("%w: entry header", ErrCorrupt)
	}
	if b[4] != formatVersion || b[5]&^(entryTombstone|entryInline) != 0 {
		return h, fmt.Errorf("%w: entry header version %d flags %#x", ErrCorrupt, b[4], b[5])
	}
	h.flags = b[5]
	h.keyLen = int(le.Uint32(b[8:]))
	h.valueLen = int64(le.Uint64(b[16:]))
	h.seq = le.Uint64(b[24:])
	h.expireAt = int64(le.Uint64(b[32:]))
	h.epoch = le.Uint64(b[40:])
	h.dataHash = le.Uint64(b[48:])
	if h.keyLen > maxKeyLen || h.valueLen < 0 || h.valueLen > maxRegionSize || h.expireAt < 0 ||
		(h.flags&entryTombstone != 0 && h.valueLen != 0) {
		return h, fmt.Errorf("%w: entry header lengths", ErrCorrupt)
	}
	return h, nil
}

// hashPiece is the piece of a value that one link of dataDigest's chain covers: part of the
// on-media format. 64 KiB: as fast as one xxh3 call over the whole value (the seed costs a few
// hundred bytes' worth per piece), and the size of the engine's I/O buffers (ioBufSize), so
// that a scan verifies a value one buffer at a time.
const hashPiece = 64 << 10

// dataDigest computes an entry's checksum: a chain of xxh3-64 hashes, each seeded with the one
// before, over the header's first 48 bytes, then the key, then each hashPiece-sized piece of
// the value (the last one shorter). Chained one-shot calls rather than xxh3's streaming state,
// which copies its input into a buffer and runs at half the speed. Feed it with add, in order.
type dataDigest struct{ sum uint64 }

// newDigest starts the checksum of an entry whose header body hdr holds (encodeBody).
func newDigest(hdr []byte, key string) dataDigest {
	return dataDigest{xxh3.HashStringSeed(key, xxh3.Hash(hdr[:48]))}
}

// add hashes the next part of the value: a whole number of pieces, except for the value's
// last part.
func (d *dataDigest) add(p []byte) {
	for len(p) > 0 {
		n := min(len(p), hashPiece)
		d.sum = xxh3.HashSeed(p[:n], d.sum)
		p = p[n:]
	}
}

// copyAdd copies src into dst as hashcopy.Copy does and hashes its first n bytes (the rest is
// padding; n may be beyond len(src), or below 0) as add does, in one pass over the bytes: src
// starts at a multiple of hashPiece into the value. It reports whether every byte was stored
// non-temporally.
func (d *dataDigest) copyAdd(dst, src []byte, n int) (nonTemporal bool) {
	nonTemporal = true
	for at := 0; at < len(src); at += hashPiece {
		q := src[at:min(at+hashPiece, len(src))]
		var nt bool
		if hn := min(n-at, len(q)); hn > 0 {
			d.sum, nt = hashcopy.CopyHash(dst[at:], q, hn, d.sum)
		} else {
			nt = hashcopy.Copy(dst[at:], q)
		}
		nonTemporal = nonTemporal && nt
	}
	return nonTemporal
}

// mover returns the move function (CPUCopier) that copies the value of an entry of n bytes
// into or out of a device a chunk at a time, adding it to d.
func (d *dataDigest) mover(n int) func(dst, src []byte) bool {
	at := 0
	return func(dst, src []byte) bool {
		nt := d.copyAdd(dst, src, n-at)
		at += len(src)
		return nt
	}
}

// dataHash is the checksum of an entry of header body hdr, key and value.
func dataHash(hdr []byte, key string, value []byte) uint64 {
	d := newDigest(hdr, key)
	d.add(value)
	return d.sum
}

// versionErr returns the error of the superblock copy, of two that failed, that holds a log of
// another format version (ErrNewerFormat, ErrOldFormat), or nil if neither does.
func versionErr(errA, errB error) error {
	for _, err := range []error{errA, errB} {
		if errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrOldFormat) {
			return err
		}
	}
	return nil
}

// record is one entry as a summary lists it.
type record struct {
	key      string
	off512   uint32 // offset within the region, in 512-byte units
	hk512    uint8  // header+key bytes (the whole entry when inline), in 512-byte units
	flags    uint8
	vlen     int64
	seq      uint64
	expireAt int64
}

func (r *record) sumLen() int { return sumFixed + len(r.key) }

// trailer closes a sealed region's summary.
type trailer struct {
	devID, epoch   uint64
	bodyLen, count uint64
	bodyHash       uint64
}

// encodeSummary lays out a region's summary area: the body at its start, the trailer in the
// last 64 bytes. len(area) must be a multiple of the block size holding both.
func encodeSummary(area []byte, t trailer, recs []record) {
	clear(area)
	b := area
	for i := range recs {
		r := &recs[i]
		le.PutUint32(b[0:], r.off512)
		b[4] = r.flags
		b[5] = r.hk512
		le.PutUint16(b[6:], uint16(len(r.key)))
		le.PutUint64(b[8:], uint64(r.vlen))
		le.PutUint64(b[16:], r.seq)
		le.PutUint64(b[24:], uint64(r.expireAt))
		copy(b[sumFixed:], r.key)
		b = b[r.sumLen():]
	}
	body := len(area) - len(b)
	tb := area[len(area)-trailerLen:]
	le.PutUint64(tb[0:], trailerMagic)
	le.PutUint64(tb[8:], t.devID)
	le.PutUint64(tb[16:], t.epoch)
	le.PutUint64(tb[24:], uint64(body))
	le.PutUint64(tb[32:], uint64(len(recs)))
	le.PutUint64(tb[40:], xxhash.Sum64(area[:body]))
	le.PutUint64(tb[56:], xxhash.Sum64(tb[:56]))
}

// parseTrailer validates the trailer at the end of b (a region's last block).
func parseTrailer(b []byte) (trailer, error) {
	var t trailer
	if len(b) < trailerLen {
		return t, fmt.Errorf("%w: short trailer", ErrCorrupt)
	}
	tb := b[len(b)-trailerLen:]
	if le.Uint64(tb[0:]) != trailerMagic || le.Uint64(tb[56:]) != xxhash.Sum64(tb[:56]) {
		return t, fmt.Errorf("%w: summary trailer", ErrCorrupt)
	}
	t = trailer{devID: le.Uint64(tb[8:]), epoch: le.Uint64(tb[16:]), bodyLen: le.Uint64(tb[24:]), count: le.Uint64(tb[32:]), bodyHash: le.Uint64(tb[40:])}
	if t.bodyLen > maxRegionSize || t.count > t.bodyLen/sumFixed {
		return t, fmt.Errorf("%w: summary trailer lengths", ErrCorrupt)
	}
	return t, nil
}

// summaryAreaLen is the size of the area holding a summary body of n bytes and its trailer.
func summaryAreaLen(body int64, bs int64) int64 { return roundUp64(body+trailerLen, bs) }

// parseSummary validates a summary area (as encodeSummary lays it out) against its trailer
// and decodes its records. Records must lie within [minOff, maxOff) of the region.
func parseSummary(area []byte, t trailer, maxOff int64) ([]record, error) {
	if int64(len(area)) < int64(t.bodyLen)+trailerLen {
		return nil, fmt.Errorf("%w: summary area of %d bytes for a body of %d", ErrCorrupt, len(area), t.bodyLen)
	}
	b := area[:t.bodyLen]
	if xxhash.Sum64(b) != t.bodyHash {
		return nil, fmt.Errorf("%w: summary checksum", ErrCorrupt)
	}
	recs := make([]record, 0, t.count)
	for len(b) > 0 {
		if len(b) < sumFixed {
			return nil, fmt.Errorf("%w: summary record truncated", ErrCorrupt)
		}
		r := record{
			off512: le.Uint32(b[0:]), flags: b[4], hk512: b[5],
			vlen: int64(le.Uint64(b[8:])), seq: le.Uint64(b[16:]), expireAt: int64(le.Uint64(b[24:])),
		}
		kl := int(le.Uint16(b[6:]))
		if len(b) < sumFixed+kl || kl > maxKeyLen || r.vlen < 0 || r.vlen > maxRegionSize || r.expireAt < 0 ||
			r.flags&^(entryTombstone|entryInline) != 0 || r.hk512 == 0 || int64(r.off512)*512+int64(r.hk512)*512 > maxOff {
			return nil, fmt.Errorf("%w: summary record fields", ErrCorrupt)
		}
		r.key = string(b[sumFixed : sumFixed+kl])
		b = b[sumFixed+kl:]
		recs = append(recs, r)
	}
	if uint64(len(recs)) != t.count {
		return nil, fmt.Errorf("%w: summary holds %d records, trailer says %d", ErrCorrupt, len(recs), t.count)
	}
	return recs, nil
}

// layout returns how an entry of key and value lengths k, v is laid out with block size bs:
// whether it is inline, the bytes of its first part (header+key, or all of it when inline),
// and its total size. An entry that fits in two blocks is packed (one small I/O, copied out);
// a larger one starts its value on a block boundary so the value can be read straight into its
// own buffer and written straight from the caller's.
func layout(k int, v int64, bs int64) (inline bool, hk, total int64) {
	if n := int64(headerLen+k) + v; n <= 2*bs {
		t := roundUp64(n, bs)
		return true, t, t
	}
	hk = roundUp64(int64(headerLen+k), bs)
	return false, hk, hk + roundUp64(v, bs)
}

func roundUp64(n, to int64) int64 { return (n + to - 1) / to * to }
