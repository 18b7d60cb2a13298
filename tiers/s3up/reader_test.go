package s3up

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestValueReader(t *testing.T) {
	val := []byte("0123456789")
	r := newValueReader(val)
	if got, err := io.ReadAll(io.NewSectionReader(r, 2, 5)); err != nil || string(got) != "23456" {
		t.Fatalf("section = %q, %v", got, err)
	}
	if pos, err := r.Seek(-3, io.SeekEnd); err != nil || pos != 7 {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	if got, err := io.ReadAll(r); err != nil || string(got) != "789" {
		t.Fatalf("Read after Seek = %q, %v", got, err)
	}
	p := make([]byte, 4)
	if n, err := r.ReadAt(p, 8); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt past the end = %d, %v", n, err)
	}

	// Once stopped, nothing more is read from the buffer, which the caller
	// may already have given back.
	r.stop()
	if _, err := r.Seek(0, io.SeekStart); !errors.Is(err, errReaderStopped) {
		t.Fatalf("Seek after stop: %v", err)
	}
	p = bytes.Repeat([]byte{'x'}, 4)
	if n, err := r.Read(p); n != 0 || !errors.Is(err, errReaderStopped) || string(p) != "xxxx" {
		t.Fatalf("Read after stop = %d, %v, %q", n, err, p)
	}
	if n, err := r.ReadAt(p, 0); n != 0 || !errors.Is(err, errReaderStopped) || string(p) != "xxxx" {
		t.Fatalf("ReadAt after stop = %d, %v, %q", n, err, p)
	}

	if got, err := io.ReadAll(newValueReader(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty value: %q, %v", got, err)
	}
}
