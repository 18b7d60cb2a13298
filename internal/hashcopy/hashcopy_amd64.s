#include "textflag.h"

// Needs AVX2 (haveNT). VMOVNTDQ needs a 32-byte aligned destination.

// func copyNT(dst, src *byte, n uintptr)
TEXT ·copyNT(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $6, CX
	JZ   ntdone

ntloop:
	VMOVDQU  0(SI), Y0
	VMOVDQU  32(SI), Y1
	VMOVNTDQ Y0, 0(DI)
	VMOVNTDQ Y1, 32(DI)
	ADDQ     $64, SI
	ADDQ     $64, DI
	DECQ     CX
	JNZ      ntloop

ntdone:
	VZEROUPPER
	SFENCE
	RET

// STRIPE copies the 64 bytes at SI to DI and folds them into the accumulators Y8 (acc[0:4])
// and Y9 (acc[4:8]) with the secret at DX:
//   k = v ^ s; acc[i^1] += v[i]; acc[i] += lo32(k[i]) * hi32(k[i])
#define STRIPE \
	PREFETCHNTA 1024(SI) \
	VMOVDQU   0(SI), Y0 \
	VMOVDQU   32(SI), Y1 \
	VMOVDQU   0(DX), Y2 \
	VMOVDQU   32(DX), Y3 \
	VPXOR     Y0, Y2, Y2 \
	VPXOR     Y1, Y3, Y3 \
	VPSRLQ    $32, Y2, Y4 \
	VPSRLQ    $32, Y3, Y5 \
	VPMULUDQ  Y4, Y2, Y4 \
	VPMULUDQ  Y5, Y3, Y5 \
	VPSHUFD   $0x4E, Y0, Y6 \
	VPSHUFD   $0x4E, Y1, Y7 \
	VPADDQ    Y6, Y8, Y8 \
	VPADDQ    Y7, Y9, Y9 \
	VPADDQ    Y4, Y8, Y8 \
	VPADDQ    Y5, Y9, Y9 \
	VMOVNTDQ  Y0, 0(DI) \
	VMOVNTDQ  Y1, 32(DI)

// func copyAccumStripes(dst, src *byte, acc *[8]uint64, secret *byte, stripes uintptr)
TEXT ·copyAccumStripes(SB), NOSPLIT, $0-40
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    acc+16(FP), AX
	MOVQ    secret+24(FP), DX
	MOVQ    stripes+32(FP), CX
	VMOVDQU 0(AX), Y8
	VMOVDQU 32(AX), Y9
	TESTQ   CX, CX
	JZ      sdone

sloop:
	STRIPE
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $8, DX
	DECQ CX
	JNZ  sloop

sdone:
	VMOVDQU Y8, 0(AX)
	VMOVDQU Y9, 32(AX)
	VZEROUPPER
	RET

// SCRAMBLE: acc ^= acc >> 47; acc ^= secret[128:192]; acc *= prime32_1 (in Y10's lanes).
#define SCRAMBLE \
	VPSRLQ   $47, Y8, Y4 \
	VPSRLQ   $47, Y9, Y5 \
	VPXOR    Y4, Y8, Y8 \
	VPXOR    Y5, Y9, Y9 \
	VMOVDQU  128(R9), Y2 \
	VMOVDQU  160(R9), Y3 \
	VPXOR    Y2, Y8, Y8 \
	VPXOR    Y3, Y9, Y9 \
	VPSRLQ   $32, Y8, Y4 \
	VPSRLQ   $32, Y9, Y5 \
	VPMULUDQ Y10, Y8, Y8 \
	VPMULUDQ Y10, Y9, Y9 \
	VPMULUDQ Y10, Y4, Y4 \
	VPMULUDQ Y10, Y5, Y5 \
	VPSLLQ   $32, Y4, Y4 \
	VPSLLQ   $32, Y5, Y5 \
	VPADDQ   Y4, Y8, Y8 \
	VPADDQ   Y5, Y9, Y9

// func copyAccumBlocks(dst, src *byte, acc *[8]uint64, secret *[192]byte, blocks uintptr)
TEXT ·copyAccumBlocks(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         acc+16(FP), AX
	MOVQ         secret+24(FP), R9
	MOVQ         blocks+32(FP), BX
	VMOVDQU      0(AX), Y8
	VMOVDQU      32(AX), Y9
	MOVQ         $0x9E3779B1, R8
	MOVQ         R8, X10
	VPBROADCASTQ X10, Y10
	TESTQ        BX, BX
	JZ           bdone

bloop:
	MOVQ R9, DX
	MOVQ $16, CX

binner:
	STRIPE
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $8, DX
	DECQ CX
	JNZ  binner
	SCRAMBLE
	DECQ BX
	JNZ  bloop

bdone:
	VMOVDQU Y8, 0(AX)
	VMOVDQU Y9, 32(AX)
	VZEROUPPER
	RET
