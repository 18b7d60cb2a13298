package s3up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/minio/minio-go/v7"

	"kvresp/tiers"
)

// User metadata keys, as minio-go hands them back (without x-amz-meta-, in
// canonical header case); S3 itself may store them lowercased, so they are
// looked up without regard to case.
//
// The checksum is xxHash64 of the value: at about 10 GB/s it is far faster
// than any S3 transfer (and computed as the value arrives, see Get), the
// project depends on it already, and its 64 bits make a damaged value that passes as good
// (2^-64) negligible where CRC32C's 2^-32 is not over billions of reads.
// S3's own checksums (x-amz-checksum-*) would verify uploads server-side,
// but minio-go sends them only as trailers, which S3-compatible stores do
// not all take, and they are not verified on GET unless asked for.
const (
	metaExpireAt = "Kvresp-Expire-At" // absolute Unix ms, "0" for none
	metaSum      = "Kvresp-Xxh64"     // 16 hex digits
	contentType  = "application/octet-stream"
)

// maxConflicts bounds how often SetExpire starts over because another
// writer replaced the object between its stat and its copy.
const maxConflicts = 3

func nowMillis() int64 { return time.Now().UnixMilli() }

// objectMeta is what Put stores beside a value.
type objectMeta struct {
	expireAt int64
	sum      uint64
	hasSum   bool
}

func metaValue(m map[string]string, key string) (string, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// parseMeta reads an object's metadata. An object without an expiry is taken
// as persistent; a malformed one is an error (a foreign object).
func parseMeta(name string, m map[string]string) (objectMeta, error) {
	var om objectMeta
	if v, ok := metaValue(m, metaExpireAt); ok {
		at, err := strconv.ParseInt(v, 10, 64)
		if err != nil || at < 0 {
			return om, fmt.Errorf("s3up: object %q has a bad %s %q: %w", name, metaExpireAt, v, tiers.ErrRefused)
		}
		om.expireAt = at
	}
	if v, ok := metaValue(m, metaSum); ok {
		sum, err := strconv.ParseUint(v, 16, 64)
		if err != nil || len(v) != 16 {
			return om, fmt.Errorf("s3up: object %q has a bad %s %q: %w", name, metaSum, v, tiers.ErrRefused)
		}
		om.sum, om.hasSum = sum, true
	}
	return om, nil
}

func (om objectMeta) userMetadata() map[string]string {
	m := map[string]string{
		// Always written, "0" included: a copy that merges metadata instead
		// of replacing it (gofakes3 does) must not keep an old expiry.
		metaExpireAt: strconv.FormatInt(om.expireAt, 10),
	}
	if om.hasSum {
		m[metaSum] = fmt.Sprintf("%016x", om.sum)
	}
	return m
}

func (u *Upstream) expired(at int64) bool { return at != 0 && at <= u.now() }

func (u *Upstream) objectName(key string) (string, error) { return ObjectName(u.prefix, key) }

// Get reads key's object. The size comes from the response's headers, and
// alloc is asked for the buffer before a byte of the body is read, so a
// value the node cannot hold is refused without being downloaded. A body
// shorter than announced is a plain error, a checksum mismatch ErrCorrupt.
func (u *Upstream) Get(ctx context.Context, key string, alloc tiers.Alloc) (tiers.Item, bool, error) {
	name, err := u.objectName(key)
	if err != nil {
		return tiers.Item{}, false, err
	}
	body, info, _, err := u.core.GetObject(ctx, u.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		if notFound(err) {
			return tiers.Item{}, false, nil
		}
		return tiers.Item{}, false, opError("get", name, err)
	}
	// Closing without draining drops the connection rather than reading a
	// value nobody wants; that only happens on the paths that fail or miss.
	defer body.Close()

	om, err := parseMeta(name, info.UserMetadata)
	if err != nil {
		return tiers.Item{}, false, err
	}
	if u.expired(om.expireAt) {
		return tiers.Item{}, false, nil
	}
	if !om.hasSum {
		return tiers.Item{}, false, fmt.Errorf("s3up: object %q has no %s (not written by kvresp?): %w", name, metaSum, tiers.ErrRefused)
	}
	if info.Size < 0 {
		return tiers.Item{}, false, fmt.Errorf("s3up: cannot get %q: the response has no Content-Length", name)
	}
	if info.Size > math.MaxInt {
		return tiers.Item{}, false, fmt.Errorf("s3up: object %q is %d bytes: %w", name, info.Size, tiers.ErrRefused)
	}
	buf, err := alloc(int(info.Size))
	if err != nil {
		// Whatever keeps the node from holding the value (too large ever,
		// no memory now) is local: it says nothing about the upstream.
		return tiers.Item{}, false, fmt.Errorf("s3up: no buffer for %q (%d bytes): %w: %w", name, info.Size, tiers.ErrRefused, err)
	}
	// Hashed a chunk at a time as it arrives, while the chunk is in the
	// CPU's cache: not a second pass over the whole value.
	d := xxhash.New()
	b := buf.Bytes()
	for off := 0; off < len(b); {
		end := min(off+readChunk, len(b))
		if _, err := io.ReadFull(body, b[off:end]); err != nil {
			buf.Release()
			return tiers.Item{}, false, fmt.Errorf("s3up: cannot read %q (%d bytes): %w", name, info.Size, err)
		}
		_, _ = d.Write(b[off:end])
		off = end
	}
	if sum := d.Sum64(); sum != om.sum {
		buf.Release()
		u.log.Warn("s3 upstream: corrupt object", "bucket", u.bucket, "object", name, "size", info.Size,
			"xxh64_stored", fmt.Sprintf("%016x", om.sum), "xxh64_read", fmt.Sprintf("%016x", sum))
		return tiers.Item{}, false, fmt.Errorf("%w: object %q: %w", ErrCorrupt, name, tiers.ErrRefused)
	}
	return tiers.Item{Buf: buf, ExpireAt: om.expireAt}, true, nil
}

// readChunk is how much of a value Get reads before hashing it.
const readChunk = 256 << 10

// stat returns name's object info; ok is false when it does not exist.
func (u *Upstream) stat(ctx context.Context, name string) (minio.ObjectInfo, bool, error) {
	info, err := u.client.StatObject(ctx, u.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		if notFound(err) {
			return info, false, nil
		}
		return info, false, opError("stat", name, err)
	}
	return info, true, nil
}

// Stat reports key's size and expiry from its object's headers.
func (u *Upstream) Stat(ctx context.Context, key string) (tiers.Meta, bool, error) {
	name, err := u.objectName(key)
	if err != nil {
		return tiers.Meta{}, false, err
	}
	info, ok, err := u.stat(ctx, name)
	if err != nil || !ok {
		return tiers.Meta{}, false, err
	}
	om, err := parseMeta(name, info.UserMetadata)
	if err != nil || u.expired(om.expireAt) {
		return tiers.Meta{}, false, err
	}
	return tiers.Meta{Size: info.Size, ExpireAt: om.expireAt}, true, nil
}

// Put stores it.Buf's bytes, uploaded straight from the buffer, with their
// expiry and checksum. A value that is already expired deletes the key.
func (u *Upstream) Put(ctx context.Context, key string, it tiers.Item) error {
	name, err := u.objectName(key)
	if err != nil {
		return err
	}
	if u.expired(it.ExpireAt) {
		_, err := u.remove(ctx, name)
		return err
	}
	var b []byte
	if it.Buf != nil {
		b = it.Buf.Bytes()
	}
	om := objectMeta{expireAt: it.ExpireAt, sum: xxhash.Sum64(b), hasSum: true}
	r := newValueReader(b)
	defer r.stop()
	_, err = u.client.PutObject(ctx, u.bucket, name, r, int64(len(b)), minio.PutObjectOptions{
		UserMetadata: om.userMetadata(),
		ContentType:  contentType,
		PartSize:     u.partSize,
		// UNSIGNED-PAYLOAD rather than minio-go's default over plain HTTP,
		// a SHA-256 signature of every 64 KiB chunk (aws-chunked): that
		// encoding sends an empty value without a Content-Length, which S3
		// answers with MissingContentLength, and it costs a SHA-256 pass
		// over every value. The body is still covered: its checksum is in
		// the signed headers and Get verifies it; TLS covers it in transit.
		DisableContentSha256: true,
	})
	if err != nil {
		return opError("put", name, err)
	}
	return nil
}

// SetExpire rewrites the object's metadata with a server-side copy onto
// itself: S3 cannot change an object's metadata in place, and the copy
// sends no value bytes. The copy is conditional on the ETag that the stat
// saw, so that the checksum carried over always belongs to the bytes
// copied: if another writer replaced the object in between, it starts over.
func (u *Upstream) SetExpire(ctx context.Context, key string, expireAt int64) (bool, error) {
	if u.expired(expireAt) {
		return u.Delete(ctx, key)
	}
	name, err := u.objectName(key)
	if err != nil {
		return false, err
	}
	for conflicts := 0; ; conflicts++ {
		info, ok, err := u.stat(ctx, name)
		if err != nil || !ok {
			return false, err
		}
		om, err := parseMeta(name, info.UserMetadata)
		if err != nil || u.expired(om.expireAt) {
			return false, err
		}
		om.expireAt = expireAt
		_, err = u.client.CopyObject(ctx,
			minio.CopyDestOptions{
				Bucket:          u.bucket,
				Object:          name,
				ReplaceMetadata: true,
				UserMetadata:    om.userMetadata(),
				ContentType:     contentType,
			},
			minio.CopySrcOptions{Bucket: u.bucket, Object: name, MatchETag: info.ETag})
		switch {
		case err == nil:
			return true, nil
		case notFound(err):
			return false, nil
		case conflicts+1 < maxConflicts && preconditionFailed(err):
			continue
		}
		return false, opError("set the expiry of", name, err)
	}
}

func preconditionFailed(err error) bool {
	var er minio.ErrorResponse
	return errors.As(err, &er) && er.Code == minio.PreconditionFailed
}

// Delete removes key's object. S3's DELETE answers the same whether or not
// the object was there, so a HEAD before it tells; an expired object is
// removed but reported absent.
func (u *Upstream) Delete(ctx context.Context, key string) (bool, error) {
	name, err := u.objectName(key)
	if err != nil {
		return false, err
	}
	return u.remove(ctx, name)
}

func (u *Upstream) remove(ctx context.Context, name string) (bool, error) {
	info, ok, err := u.stat(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	// An object whose metadata are not kvresp's is still this key's object:
	// it is removed and counted as existing.
	om, err := parseMeta(name, info.UserMetadata)
	existed := err != nil || !u.expired(om.expireAt)
	if err := u.client.RemoveObject(ctx, u.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return false, opError("delete", name, err)
	}
	return existed, nil
}
