#include "textflag.h"

// The cache-line write-back loops and the fence of flush_amd64.go. Each loop takes the address
// of the first line (aligned to the line size) and a count of lines; the caller keeps the count
// small (one flushChunk) so that a call is never long without a preemption point.

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func clwbLines(addr, n, step uintptr)
TEXT ·clwbLines(SB), NOSPLIT, $0-24
	MOVQ addr+0(FP), AX
	MOVQ n+8(FP), CX
	MOVQ step+16(FP), DX
	TESTQ CX, CX
	JZ clwbDone
clwbLoop:
	CLWB (AX)
	ADDQ DX, AX
	DECQ CX
	JNZ clwbLoop
clwbDone:
	RET

// func clflushoptLines(addr, n, step uintptr)
TEXT ·clflushoptLines(SB), NOSPLIT, $0-24
	MOVQ addr+0(FP), AX
	MOVQ n+8(FP), CX
	MOVQ step+16(FP), DX
	TESTQ CX, CX
	JZ optDone
optLoop:
	CLFLUSHOPT (AX)
	ADDQ DX, AX
	DECQ CX
	JNZ optLoop
optDone:
	RET

// func clflushLines(addr, n, step uintptr)
TEXT ·clflushLines(SB), NOSPLIT, $0-24
	MOVQ addr+0(FP), AX
	MOVQ n+8(FP), CX
	MOVQ step+16(FP), DX
	TESTQ CX, CX
	JZ flushDone
flushLoop:
	CLFLUSH (AX)
	ADDQ DX, AX
	DECQ CX
	JNZ flushLoop
flushDone:
	RET

// func sfence()
TEXT ·sfence(SB), NOSPLIT, $0-0
	SFENCE
	RET
