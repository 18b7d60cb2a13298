package s3up

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"kvresp/tiers"
)

// maxObjectName is S3's limit on an object name, in bytes of its UTF-8 form.
const maxObjectName = 1024

// The encoding of a key into the last part of an object name. A Redis key is
// any byte string, while an object name must be UTF-8, and several bytes are
// trouble in one even when S3 accepts them: '/' builds "directories" (and
// "//", "." and ".." segments are rejected or cleaned away by S3-compatible
// servers and proxies), controls and XML-special characters break listings,
// and '+', '%', '&', ' ' are mangled by tools that decode names twice. So the
// encoding keeps [A-Za-z0-9._-] as they are, which leaves common keys
// readable in a bucket listing ("user.42" stays "user.42"), and writes every
// other byte as '!' and two uppercase hex digits ("user:42" is "user!3A42").
// '!' is in AWS's list of characters safe in object names.
//
// Two rules keep the encoded part a name of its own: a leading '.' is escaped
// too (so that no key encodes to a "." or ".." segment), and the empty key is
// "!" (so that no name ends in the prefix's '/', a "directory" marker). Every
// key has exactly one encoding, and KeyOf accepts only that one, so two
// object names never stand for the same key.
const (
	escapeByte = '!'
	emptyKey   = "!"
	hexDigits  = "0123456789ABCDEF"
)

var errBadName = errors.New("s3up: object name is not one that ObjectName makes")

// literal reports whether c stands for itself in an encoded key (at position
// i of the encoded part).
func literal(c byte, i int) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		return true
	case c == '.':
		return i > 0
	}
	return false
}

// ObjectName returns the name of key's object under prefix, which is put in
// front as it is (Open makes it "" or a path ending in '/'). A key whose name
// would be longer than S3 allows (1024 bytes) is refused: the error wraps
// tiers.ErrRefused.
func ObjectName(prefix, key string) (string, error) {
	if !utf8.ValidString(prefix) {
		return "", fmt.Errorf("s3up: prefix %q is not valid UTF-8", prefix)
	}
	if key == "" {
		return prefix + emptyKey, nil
	}
	n := len(prefix)
	for i := 0; i < len(key); i++ {
		if literal(key[i], i) {
			n++
		} else {
			n += 3
		}
	}
	if n > maxObjectName {
		return "", fmt.Errorf("s3up: a key of %d bytes makes an object name of %d bytes, over S3's limit of %d: %w",
			len(key), n, maxObjectName, tiers.ErrRefused)
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(prefix)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if literal(c, i) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escapeByte)
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String(), nil
}

// KeyOf returns the key whose object under prefix is name: the inverse of
// ObjectName. It fails for a name outside prefix and for one ObjectName
// would not make (another tool's object, a non-canonical escape).
func KeyOf(prefix, name string) (string, error) {
	enc, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", fmt.Errorf("s3up: object name %q is not under prefix %q", name, prefix)
	}
	switch enc {
	case "":
		return "", fmt.Errorf("%w: %q has nothing after the prefix", errBadName, name)
	case emptyKey:
		return "", nil
	}
	key := make([]byte, 0, len(enc))
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if c != escapeByte {
			if !literal(c, i) {
				return "", fmt.Errorf("%w: %q has %q at %d", errBadName, name, c, len(prefix)+i)
			}
			key = append(key, c)
			continue
		}
		hi, lo := -1, -1
		if i+2 < len(enc) {
			hi, lo = unhex(enc[i+1]), unhex(enc[i+2])
		}
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("%w: %q has a bad escape at %d", errBadName, name, len(prefix)+i)
		}
		b := byte(hi<<4 | lo)
		if literal(b, len(key)) {
			return "", fmt.Errorf("%w: %q escapes %q, which stands for itself", errBadName, name, b)
		}
		key = append(key, b)
		i += 2
	}
	return string(key), nil
}

// unhex decodes an uppercase hex digit, -1 for anything else (lowercase
// digits are not canonical).
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
