package s3up

import (
	"bytes"
	"errors"
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
	mu      sync.Mutex // held while bytes are copied out, so stop waits for readers
	r       *bytes.Reader
	stopped bool
}

func newValueReader(b []byte) *valueReader { return &valueReader{r: bytes.NewReader(b)} }

// stop makes every later read fail; when it returns no read is in progress.
func (r *valueReader) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

func (r *valueReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, errReaderStopped
	}
	return r.r.Read(p)
}

func (r *valueReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, errReaderStopped
	}
	return r.r.ReadAt(p, off)
}

func (r *valueReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, errReaderStopped
	}
	return r.r.Seek(offset, whence)
}
