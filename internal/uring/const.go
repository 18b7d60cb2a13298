package uring

// Op is an io_uring opcode (enum io_uring_op in include/uapi/linux/io_uring.h). Only the ones
// kvresp prepares are named; any other value can be probed or set on an SQE by hand.
type Op uint8

const (
	OpNop        Op = 0
	OpReadv      Op = 1
	OpWritev     Op = 2
	OpFsync      Op = 3
	OpReadFixed  Op = 4
	OpWriteFixed Op = 5
	OpTimeout    Op = 11
	OpFallocate  Op = 17
	OpRead       Op = 22
	OpWrite      Op = 23
	OpURingCmd   Op = 46
)

// SQE flags (sqe->flags, IOSQE_*).
const (
	IOSQEFixedFile      uint8 = 1 << 0 // fd is an index into the registered files
	IOSQEIODrain        uint8 = 1 << 1 // start only after every earlier op completed
	IOSQEIOLink         uint8 = 1 << 2 // the next SQE starts after this one succeeds
	IOSQEIOHardlink     uint8 = 1 << 3 // like IOLink, but the chain survives a failure
	IOSQEAsync          uint8 = 1 << 4 // skip the inline attempt, go to an async worker
	IOSQEBufferSelect   uint8 = 1 << 5
	IOSQECQESkipSuccess uint8 = 1 << 6 // post no CQE when the op succeeds
)

// Per-op flags.
const (
	FsyncDatasync uint32 = 1 << 0 // IORING_FSYNC_DATASYNC: fdatasync instead of fsync
	URingCmdFixed uint32 = 1 << 0 // IORING_URING_CMD_FIXED: the command uses the registered buffer at buf_index
)

// Setup flags (io_uring_params.flags, IORING_SETUP_*). Params sets them from its fields;
// Params.ExtraFlags passes any other.
const (
	SetupIOPoll       uint32 = 1 << 0
	SetupSQPoll       uint32 = 1 << 1
	SetupSQAff        uint32 = 1 << 2
	SetupCQSize       uint32 = 1 << 3
	SetupClamp        uint32 = 1 << 4
	SetupAttachWQ     uint32 = 1 << 5
	SetupRDisabled    uint32 = 1 << 6
	SetupSubmitAll    uint32 = 1 << 7
	SetupCoopTaskrun  uint32 = 1 << 8
	SetupTaskrunFlag  uint32 = 1 << 9
	SetupSQE128       uint32 = 1 << 10
	SetupCQE32        uint32 = 1 << 11
	SetupSingleIssuer uint32 = 1 << 12
	SetupDeferTaskrun uint32 = 1 << 13
)

// Features the kernel reports back from setup (IORING_FEAT_*).
const (
	FeatSingleMmap     uint32 = 1 << 0 // SQ and CQ rings share one mmap
	FeatNoDrop         uint32 = 1 << 1 // CQEs beyond the CQ ring are kept, not dropped
	FeatSubmitStable   uint32 = 1 << 2 // data for submission is copied at submit time
	FeatRWCurPos       uint32 = 1 << 3
	FeatCurPersonality uint32 = 1 << 4
	FeatFastPoll       uint32 = 1 << 5
	FeatPoll32Bits     uint32 = 1 << 6
	FeatSQPollNonfixed uint32 = 1 << 7
	FeatExtArg         uint32 = 1 << 8 // io_uring_enter takes io_uring_getevents_arg (wait timeouts)
	FeatNativeWorkers  uint32 = 1 << 9
)

// CQE flags (cqe->flags, IORING_CQE_F_*).
const (
	CQEFBuffer uint32 = 1 << 0
	CQEFMore   uint32 = 1 << 1
)

// Kernel limits and ABI values from include/uapi/linux/io_uring.h and io_uring/io_uring.c.
const (
	maxEntries     = 32768 // IORING_MAX_ENTRIES
	maxCQEntries   = 2 * maxEntries
	defaultEntries = 128 // a Params with Entries 0 gets this; deep enough for QD 32 with room

	probeOpSupported = 1 << 0 // IO_URING_OP_SUPPORTED
	probeOps         = 256    // an opcode is a u8, so 256 slots cover every possible op
)
