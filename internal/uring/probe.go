package uring

// Probe is the kernel's answer to IORING_REGISTER_PROBE: which opcodes this kernel supports.
type Probe struct {
	lastOp    Op
	supported [probeOps / 64]uint64
}

// OpSupported reports whether the kernel supports op.
func (p *Probe) OpSupported(op Op) bool {
	return p.supported[op/64]&(1<<(op%64)) != 0
}

// LastOp returns the highest opcode this kernel knows.
func (p *Probe) LastOp() Op { return p.lastOp }
