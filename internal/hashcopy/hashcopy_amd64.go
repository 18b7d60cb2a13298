package hashcopy

import (
	"golang.org/x/sys/cpu"

	"kvresp/slab"
)

var haveNT = cpu.X86.HasAVX2

func aligned(p []byte) bool { return len(p) > 0 && slab.Addr(p)%32 == 0 }

// copyNT copies n bytes (a multiple of 64) from src to dst (32-byte aligned) with non-temporal
// stores, then fences.
//
//go:noescape
func copyNT(dst, src *byte, n uintptr)

// copyAccumStripes copies stripes 64-byte stripes as copyNT does, but without the fence, and
// folds each into acc, the i-th with the secret at secret+8i.
//
//go:noescape
func copyAccumStripes(dst, src *byte, acc *[8]uint64, secret *byte, stripes uintptr)

// copyAccumBlocks copies blocks 1024-byte blocks as copyAccumStripes does, folding each of their 16
// stripes into acc as copyAccumStripes does and scrambling acc after each block with the
// secret's last 64 bytes.
//
//go:noescape
func copyAccumBlocks(dst, src *byte, acc *[8]uint64, secret *[secretSize]byte, blocks uintptr)
