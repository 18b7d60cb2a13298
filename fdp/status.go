package fdp

import (
	"fmt"
	"syscall"
)

// Status is the NVMe status a passthrough completion reports in a positive CQE res: status code
// SC in bits 7:0, status code type SCT in bits 10:8, command retry delay in 12:11, More in 13
// and Do Not Retry in 14. errors.Is matches on SCT and SC only, so
// errors.Is(err, StatusLBAOutOfRange) holds whatever the DNR and retry bits say.
type Status uint16

// Statuses kvresp names. The value is SCT<<8 | SC.
const (
	StatusInvalidOpcode         Status = 0x001
	StatusInvalidField          Status = 0x002
	StatusDataTransferError     Status = 0x004
	StatusAbortedPowerLoss      Status = 0x005
	StatusInternalError         Status = 0x006
	StatusAbortRequested        Status = 0x007
	StatusInvalidNamespace      Status = 0x00B // invalid namespace or format
	StatusCommandSequenceError  Status = 0x00C
	StatusDataSGLLengthInvalid  Status = 0x00F // also what QEMU answers when DataLen ≠ blocks × LBA size
	StatusNamespaceWriteProtect Status = 0x020
	StatusFDPDisabled           Status = 0x029
	StatusInvalidPlacementList  Status = 0x02A
	StatusLBAOutOfRange         Status = 0x080
	StatusCapacityExceeded      Status = 0x081
	StatusNamespaceNotReady     Status = 0x082
	StatusReservationConflict   Status = 0x083
	StatusFormatInProgress      Status = 0x084

	StatusInvalidLogPage        Status = 0x109
	StatusFeatureNotChangeable  Status = 0x10E
	StatusConflictingAttributes Status = 0x180
	StatusWriteToReadOnlyRange  Status = 0x182

	StatusWriteFault             Status = 0x280
	StatusUnrecoveredReadError   Status = 0x281
	StatusAccessDenied           Status = 0x286
	StatusDeallocatedOrUnwritten Status = 0x287
)

var statusNames = map[Status]string{
	StatusInvalidOpcode:          "invalid command opcode",
	StatusInvalidField:           "invalid field in command",
	StatusDataTransferError:      "data transfer error",
	StatusAbortedPowerLoss:       "aborted due to power loss",
	StatusInternalError:          "internal error",
	StatusAbortRequested:         "command abort requested",
	StatusInvalidNamespace:       "invalid namespace or format",
	StatusCommandSequenceError:   "command sequence error",
	StatusDataSGLLengthInvalid:   "data SGL length invalid",
	StatusNamespaceWriteProtect:  "namespace is write protected",
	StatusFDPDisabled:            "FDP disabled",
	StatusInvalidPlacementList:   "invalid placement handle list",
	StatusLBAOutOfRange:          "LBA out of range",
	StatusCapacityExceeded:       "capacity exceeded",
	StatusNamespaceNotReady:      "namespace not ready",
	StatusReservationConflict:    "reservation conflict",
	StatusFormatInProgress:       "format in progress",
	StatusInvalidLogPage:         "invalid log page",
	StatusFeatureNotChangeable:   "feature not changeable",
	StatusConflictingAttributes:  "conflicting attributes",
	StatusWriteToReadOnlyRange:   "attempted write to read only range",
	StatusWriteFault:             "write fault",
	StatusUnrecoveredReadError:   "unrecovered read error",
	StatusAccessDenied:           "access denied",
	StatusDeallocatedOrUnwritten: "deallocated or unwritten logical block",
}

var sctNames = [8]string{"generic", "command specific", "media and data integrity", "path related", "", "", "", "vendor specific"}

// SC returns the status code.
func (s Status) SC() uint8 { return uint8(s) }

// SCT returns the status code type.
func (s Status) SCT() uint8 { return uint8(s>>8) & 0x7 }

// DNR reports the Do Not Retry bit: the same command will fail again.
func (s Status) DNR() bool { return s&(1<<14) != 0 }

// Code returns s without the DNR, More and retry delay bits: SCT<<8 | SC, what the Status
// constants hold.
func (s Status) Code() Status { return s & 0x7FF }

// Error names the status where kvresp knows it and always gives the raw numbers.
func (s Status) Error() string {
	name, ok := statusNames[s.Code()]
	if !ok {
		name = "unknown status"
		if n := sctNames[s.SCT()]; n != "" {
			name = "unknown " + n + " status"
		}
	}
	dnr := ""
	if s.DNR() {
		dnr = ", do not retry"
	}
	return fmt.Sprintf("fdp: NVMe status %#x: %s (SCT %d, SC %#02x%s)", uint16(s), name, s.SCT(), s.SC(), dnr)
}

// Is makes errors.Is match a Status against the constants above by SCT and SC.
func (s Status) Is(target error) bool {
	t, ok := target.(Status)
	return ok && t.Code() == s.Code()
}

// ResultError turns a passthrough CQE res into an error: nil for 0, a syscall.Errno for a
// negative res (the kernel refused the command: EINVAL for a bad NSID or a transfer over the
// maximum, EACCES or EPERM without privileges), and a Status for a positive one (the device
// completed the command with an error).
func ResultError(res int32) error {
	switch {
	case res < 0:
		return syscall.Errno(-res)
	case res > 0:
		return Status(uint16(res))
	}
	return nil
}
