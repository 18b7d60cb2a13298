package rawblock

import (
	"testing"

	"github.com/cespare/xxhash/v2"
)

func FuzzSuperblock(f *testing.F) {
	b := make([]byte, superSlot)
	sb := superblock{version: formatVersion, blockSize: 4096, regionSize: 1 << 20, regionCount: 8, generation: 1, dataStart: dataStart}
	sb.encode(b)
	f.Add(b[:superLen])
	f.Fuzz(func(t *testing.T, p []byte) {
		if _, err := parseSuper(p); err == nil && le.Uint64(p[72:]) != xxhash.Sum64(p[:72]) {
			t.Fatal("accepted a superblock with a bad checksum")
		}
	})
}

func FuzzEntryHeader(f *testing.F) {
	b := make([]byte, headerLen)
	h := entryHeader{keyLen: 3, valueLen: 28, seq: 9, epoch: 2}
	h.encode(b)
	f.Add(b)
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := parseEntryHeader(p)
		if err != nil {
			return
		}
		if le.Uint64(p[56:]) != xxhash.Sum64(p[:56]) {
			t.Fatal("accepted an entry header with a bad checksum")
		}
		if h.keyLen > maxKeyLen || h.valueLen < 0 {
			t.Fatal("accepted bad lengths")
		}
	})
}

func FuzzSummary(f *testing.F) {
	recs := []record{{key: "k1", off512: 8, hk512: 1, vlen: 28, seq: 5}, {key: "key2", off512: 9, hk512: 8, vlen: 1 << 20, seq: 6, flags: entryTombstone}}
	area := make([]byte, 4096)
	encodeSummary(area, trailer{devID: 1, epoch: 2}, recs)
	f.Add(area)
	f.Fuzz(func(t *testing.T, area []byte) {
		tr, err := parseTrailer(area)
		if err != nil {
			return
		}
		tb := area[len(area)-trailerLen:]
		if le.Uint64(tb[56:]) != xxhash.Sum64(tb[:56]) {
			t.Fatal("accepted a trailer with a bad checksum")
		}
		recs, err := parseSummary(area, tr, 1<<30)
		if err != nil {
			return
		}
		if xxhash.Sum64(area[:tr.bodyLen]) != tr.bodyHash || uint64(len(recs)) != tr.count {
			t.Fatal("accepted a summary with a bad checksum or count")
		}
	})
}
