package dax

import (
	"errors"
	"strconv"
	"strings"
)

// parseSysfsSize reads a sysfs attribute that holds one non-negative decimal number and a
// newline, as the device-DAX size and align attributes do.
func parseSysfsSize(s string) (int64, error) {
	t := strings.TrimRight(s, "\n")
	if t == "" || t[0] == '+' || t[0] == '-' {
		return 0, errors.New("dax: sysfs attribute is not a non-negative decimal number: " + strconv.Quote(s))
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, errors.New("dax: sysfs attribute is not a non-negative decimal number: " + strconv.Quote(s))
	}
	return n, nil
}
