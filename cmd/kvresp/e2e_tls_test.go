package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// selfSignedTLS writes a fresh self-signed certificate for 127.0.0.1/localhost and returns the
// files for the server and a client config that trusts exactly that certificate.
func selfSignedTLS(t *testing.T) *tlsFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kvresp e2e"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &tlsFiles{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(f.certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	f.config = &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	return f
}

func TestE2ETLS(t *testing.T) {
	certs := selfSignedTLS(t)
	s := startServer(t, serverOptions{tls: certs})
	ctx := ctxT(t)

	value := bytes.Repeat([]byte("tls!"), 1<<18) // 1 MiB
	for _, proto := range []int{3, 2} {
		rdb := redis.NewClient(&redis.Options{Addr: s.tlsAddr, Protocol: proto, TLSConfig: certs.config})
		if err := rdb.Set(ctx, "tls:k", value, 0).Err(); err != nil {
			t.Fatalf("RESP%d over TLS: SET: %v", proto, err)
		}
		got, err := rdb.Get(ctx, "tls:k").Bytes()
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("RESP%d over TLS: GET returned %d bytes, %v", proto, len(got), err)
		}
		rdb.Close()
	}

	// A plaintext client on the TLS port gets no RESP reply.
	c, err := net.Dial("tcp", s.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	rc := newRespConn(t, c)
	rc.c.Write([]byte("PING\r\n"))
	b := make([]byte, 7)
	n, _ := io.ReadFull(rc.r, b)
	if string(b[:n]) == "+PONG\r\n" {
		t.Fatal("the TLS port answered a plaintext PING")
	}
	c.Close()

	t.Run("redis-cli", func(t *testing.T) {
		cli := needTool(t, "redis-cli")
		help, _ := exec.Command(cli, "--help").CombinedOutput()
		if !strings.Contains(string(help), "--tls") {
			missing(t, "redis-cli was built without TLS")
		}
		_, port, _ := net.SplitHostPort(s.tlsAddr)
		args := []string{"--tls", "--insecure", "-h", "127.0.0.1", "-p", port}
		if got := runTool(t, nil, cli, append(args, "PING")...); got != "PONG\n" {
			t.Fatalf("redis-cli --tls PING = %q", got)
		}
		if got := runTool(t, nil, cli, append(args, "SET", "tls:cli", "over tls")...); got != "OK\n" {
			t.Fatalf("redis-cli --tls SET = %q", got)
		}
		if got := runTool(t, nil, cli, append(args, "GET", "tls:cli")...); got != "over tls\n" {
			t.Fatalf("redis-cli --tls GET = %q", got)
		}
		// And verifying the certificate instead of skipping the check.
		args = []string{"--tls", "--cacert", certs.certFile, "--sni", "localhost", "-h", "127.0.0.1", "-p", port}
		if got := runTool(t, nil, cli, append(args, "STRLEN", "tls:k")...); got != "1048576\n" {
			t.Fatalf("redis-cli --tls --cacert STRLEN = %q", got)
		}
	})
}
