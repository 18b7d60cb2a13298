//go:build linux && (mips || mipsle || mips64 || mips64le)

package dax

// mapSyncFlags is 0: MIPS has no MAP_SYNC, so every file is mapped plainly (msync).
const mapSyncFlags = 0
