//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package dax

import "golang.org/x/sys/unix"

// mapSyncFlags asks for a shared mapping whose page faults sync the filesystem's metadata
// (MAP_SYNC, which only MAP_SHARED_VALIDATE makes the kernel check rather than ignore).
const mapSyncFlags = unix.MAP_SHARED_VALIDATE | unix.MAP_SYNC
