package uring

import (
	"errors"
	"fmt"
)

// Params describes a ring to set up. The zero value is a plain ring of 128 entries.
type Params struct {
	// Entries is the SQ size; the kernel rounds it up to a power of two. 0 means 128. Over
	// 32768 needs Clamp.
	Entries uint32
	// CQEntries is the CQ size (IORING_SETUP_CQSIZE), at least Entries. 0 means the kernel's
	// default of twice the SQ size.
	CQEntries uint32

	// SQPoll starts a kernel thread that polls the SQ, so submitting needs no system call while
	// the thread is awake. SQThreadIdleMs is how long it spins idle before sleeping (0: the
	// kernel's 1 s); with SQAff it is bound to CPU SQThreadCPU.
	SQPoll         bool
	SQThreadIdleMs uint32
	SQAff          bool
	SQThreadCPU    uint32

	// SingleIssuer promises the kernel that only the creating thread submits (see the package
	// doc for what that means in Go). DeferTaskrun, which needs it, runs completion work only
	// when that thread waits. CoopTaskrun stops the kernel from interrupting the task to post
	// completions. None of the three goes with SQPoll.
	SingleIssuer bool
	DeferTaskrun bool
	CoopTaskrun  bool

	// SQE128 doubles entries to 128 bytes (80-byte command area) and CQE32 completions to 32
	// bytes; NVMe passthrough needs both.
	SQE128 bool
	CQE32  bool

	// Clamp makes the kernel clamp oversized Entries and CQEntries instead of failing.
	Clamp bool

	// ExtraFlags are further IORING_SETUP_* bits, passed through unchecked.
	ExtraFlags uint32
}

// Validate reports every problem with p at once.
func (p Params) Validate() error {
	var errs []error
	entries := p.Entries
	if entries == 0 {
		entries = defaultEntries
	}
	if entries > maxEntries && !p.Clamp {
		errs = append(errs, fmt.Errorf("uring: %d entries is over the kernel's limit of %d; lower it or set Clamp", p.Entries, maxEntries))
	}
	if p.CQEntries != 0 {
		if p.CQEntries > maxCQEntries && !p.Clamp {
			errs = append(errs, fmt.Errorf("uring: %d CQ entries is over the kernel's limit of %d; lower it or set Clamp", p.CQEntries, maxCQEntries))
		}
		if p.CQEntries < entries {
			errs = append(errs, fmt.Errorf("uring: %d CQ entries is fewer than the %d SQ entries; the CQ must be at least as large", p.CQEntries, entries))
		}
	}
	if !p.SQPoll {
		if p.SQAff {
			errs = append(errs, errors.New("uring: SQAff (SQ thread CPU) needs SQPoll"))
		}
		if p.SQThreadIdleMs != 0 {
			errs = append(errs, errors.New("uring: SQThreadIdleMs needs SQPoll"))
		}
	} else if p.DeferTaskrun || p.CoopTaskrun {
		errs = append(errs, errors.New("uring: SQPoll does not go with DeferTaskrun or CoopTaskrun; drop one"))
	}
	if p.DeferTaskrun && !p.SingleIssuer {
		errs = append(errs, errors.New("uring: DeferTaskrun needs SingleIssuer"))
	}
	return errors.Join(errs...)
}
