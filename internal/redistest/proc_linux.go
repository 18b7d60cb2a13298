package redistest

import "syscall"

// childAttr kills a test's servers with the test binary, should it die
// before its Cleanups run (a panic, a timeout, a SIGKILL), so that no server
// outlives the test holding its port. The signal follows the thread that
// started the child, and Go's runtime does not end its threads while the
// binary runs.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
