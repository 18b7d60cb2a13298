//go:build unix

package resp

import "syscall"

const syscallEMFILE = syscall.EMFILE
