package fdp

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

func TestResultError(t *testing.T) {
	if err := ResultError(0); err != nil {
		t.Fatalf("ResultError(0) = %v", err)
	}
	if err := ResultError(-int32(syscall.EINVAL)); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ResultError(-EINVAL) = %v", err)
	}
	var st Status
	if err := ResultError(-int32(syscall.ENOTTY)); errors.As(err, &st) {
		t.Fatalf("an errno is a Status: %v", err)
	}
	for _, tc := range []struct {
		res    int32
		is     Status
		sct    uint8
		sc     uint8
		dnr    bool
		inText string
	}{
		// What DESIGN §5 saw: an LBA past the end, and DataLen ≠ blocks × LBA size.
		{0x4080, StatusLBAOutOfRange, 0, 0x80, true, "LBA out of range"},
		{0x400F, StatusDataSGLLengthInvalid, 0, 0x0F, true, "data SGL length invalid"},
		{0x0002, StatusInvalidField, 0, 0x02, false, "invalid field in command"},
		{0x4029, StatusFDPDisabled, 0, 0x29, true, "FDP disabled"},
		{0x0281, StatusUnrecoveredReadError, 2, 0x81, false, "unrecovered read error"},
		{0x41F0, 0x1F0, 1, 0xF0, true, "unknown command specific status"},
		{0x07C1, 0x7C1, 7, 0xC1, false, "unknown vendor specific status"},
	} {
		err := ResultError(tc.res)
		if !errors.As(err, &st) {
			t.Fatalf("%#x: not a Status: %v", tc.res, err)
		}
		if !errors.Is(err, tc.is) || !errors.Is(fmt.Errorf("write: %w", err), tc.is) {
			t.Errorf("%#x: errors.Is(%v) false", tc.res, tc.is)
		}
		if st.SCT() != tc.sct || st.SC() != tc.sc || st.DNR() != tc.dnr {
			t.Errorf("%#x: SCT %d SC %#x DNR %v", tc.res, st.SCT(), st.SC(), st.DNR())
		}
		if msg := err.Error(); !strings.Contains(msg, tc.inText) || !strings.HasPrefix(msg, "fdp: ") {
			t.Errorf("%#x: %q lacks %q", tc.res, msg, tc.inText)
		}
	}
	if errors.Is(ResultError(0x4080), StatusInvalidField) {
		t.Fatal("LBA out of range is an invalid field")
	}
	if errors.Is(ResultError(0x4080), syscall.Errno(0x80)) {
		t.Fatal("a Status is an errno")
	}
}
