package s3up

import (
	"errors"
	"io"
	"sync"
)

var errReaderStopped = errors.New("s3up: value read after its Put returned")

// valueReader serves a value's bytes (a slab buffer's, not a copy) as a
// request body, and stops serving them when Put returns. That guard is
// needed: net/http may go on reading a body after RoundTrip has returned
// (http.RoundTripper's contract; it happens when the server answers before
// the whole body is sent), minio-go hides the body's Close behind a
// NopCloser so there is nothing to wait for, and the slab buffer can be
// reused or unmapped as soon as Put's caller releases it. Reading it then
// would send another value's bytes or fault.
//
// It implements io.ReaderAt and io.Seeker because minio-go then uploads
// from it without buffering (a section reader for a single PUT, one per
// part, read in parallel, for a multipart upload).
type valueReader struct {
	mu  sync.Mutex // held while bytes are copied out, so stop waits for readers
	b   []byte     // nil once stopped
	off int64
}

func newValueReader(b []byte) *valueReader {
	if b == nil {
		b = []byte{}
	}
	return &valueReader{b: b}
}

// stop makes every later read fail; when it returns no read is in progress.
func (r *valueReader) stop() {
	r.mu.Lock()
	r.b = nil
	r.mu.Unlock()
}

func (r *valueReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return 0, errReaderStopped
	}
	if r.off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += int64(n)
	return n, nil
}

func (r *valueReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return 0, errReaderStopped
	}
	if off < 0 {
		return 0, errors.New("s3up: negative offset")
	}
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *valueReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.b == nil {
		return 0, errReaderStopped
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += int64(len(r.b))
	default:
		return 0, errors.New("s3up: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("s3up: negative position")
	}
	r.off = offset
	return offset, nil
}
