// Package fdp speaks NVMe passthrough for kvresp's NVMe tier: it encodes the 72-byte struct
// nvme_uring_cmd that an io_uring URING_CMD carries (Read, Write with a placement ID, Dataset
// Management deallocate, Identify, Get Features, Get Log Page, I/O Management Receive), decodes
// the NVMe status a completion returns, parses the pages that describe Flexible Data Placement
// (TP4146: the FDP configurations, reclaim unit handle usage, statistics and events logs, and the
// reclaim unit handle status), and gathers them into an Info that `kvresp fdp info` prints.
//
// The encoders and parsers are pure functions over bytes and run everywhere. The devices
// (Controller on /dev/nvmeX for admin commands, Namespace on /dev/ngXnY for I/O commands) and
// Probe need Linux; elsewhere they return errors.ErrUnsupported.
//
// Every buffer the kernel reads or writes for a command must live outside the Go heap (see
// MapBuffer): the Go runtime moves goroutine stacks, and the kernel would then write into memory
// that no longer holds the buffer.
package fdp
