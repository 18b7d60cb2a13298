//go:build !amd64

package hashcopy

const haveNT = false

func aligned([]byte) bool { return false }

func copyNT(dst, src *byte, n uintptr) { panic("hashcopy: no non-temporal copy on this architecture") }

func copyAccumStripes(dst, src *byte, acc *[8]uint64, secret *byte, stripes uintptr) {
	panic("hashcopy: no non-temporal copy on this architecture")
}

func copyAccumBlocks(dst, src *byte, acc *[8]uint64, secret *[secretSize]byte, blocks uintptr) {
	panic("hashcopy: no non-temporal copy on this architecture")
}
