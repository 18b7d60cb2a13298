//go:build !unix

package resp

import "syscall"

const syscallEMFILE = syscall.Errno(24)
