//go:build !linux

package dax

import (
	"errors"
	"fmt"
)

var errNoDAX = fmt.Errorf("dax: the DAX tier needs Linux: %w", errors.ErrUnsupported)

// Open returns errors.ErrUnsupported: DAX mappings are Linux's.
func Open(o Options) (*Device, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return nil, errNoDAX
}

// IsDevDAX reports false: device-DAX is Linux's.
func IsDevDAX(path string) bool { return false }

func msyncRange(mem, b []byte) error { return errNoDAX }
