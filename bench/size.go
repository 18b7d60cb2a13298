package bench

import "kvresp/internal/memsize"

// sizeFlag is a flag.Value holding a size.
type sizeFlag int64

func (f *sizeFlag) String() string { return memsize.Format(int64(*f)) }

func (f *sizeFlag) Set(s string) error {
	n, err := memsize.Parse(s)
	if err != nil {
		return err
	}
	*f = sizeFlag(n)
	return nil
}
