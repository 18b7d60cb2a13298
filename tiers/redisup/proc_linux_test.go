package redisup

import "syscall"

// childAttr kills a test's servers with the test binary, should it die before its
// Cleanups run.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
