package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
)

// A node reaches a Redis that only speaks TLS and wants a client
// certificate, with the CA, certificate and key files of the config; with
// another CA it does not trust the server and stays not ready.
func TestRedisTLS(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH")
	}
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	port := freeTCPPort(t)
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", pki.serverCert, "--tls-key-file", pki.serverKey, "--tls-ca-cert-file", pki.ca,
		"--tls-auth-clients", "yes", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Up once it completes a TLS handshake.
	clientCert, err := tls.LoadX509KeyPair(pki.clientCert, pki.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	waitForWithin(t, 10*time.Second, func() bool {
		c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{clientCert}})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})

	a := testApp("1")
	redis := config.Redis{
		URL:             "rediss://127.0.0.1:" + strconv.Itoa(port) + "/0",
		TLS:             config.RedisTLS{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey},
		NodeTTL:         3 * time.Second,
		RefreshInterval: time.Second,
	}
	ts := startServer(t, config.Config{Apps: []apps.App{a}, Redis: redis})
	waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
	c, _ := connect(t, ts, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/events", nil, `{"name":"tick","channel":"news","data":"x"}`); code != 200 {
		t.Fatalf("publish over TLS: %d %s", code, body)
	}
	c.Expect("tick")

	// A CA that did not sign the server's certificate: never ready.
	other := newTestPKI(t, t.TempDir())
	redis.TLS.CAFile = other.ca
	bad := startServer(t, config.Config{Apps: []apps.App{a}, Redis: redis})
	for range 10 {
		if code, _ := probe(t, bad, "/readyz"); code != 503 {
			t.Fatalf("/readyz trusting another CA: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testPKI is a CA and a server and a client certificate it signed, as PEM
// files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "herald test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "herald test " + strconv.Itoa(int(serial))},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := leaf(2, x509.ExtKeyUsageServerAuth)
	cDER, cKey := leaf(3, x509.ExtKeyUsageClientAuth)
	return testPKI{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		serverCert: write("server.pem", "CERTIFICATE", sDER),
		serverKey:  writeKey("server-key.pem", sKey),
		clientCert: write("client.pem", "CERTIFICATE", cDER),
		clientKey:  writeKey("client-key.pem", cKey),
	}
}

// freeTCPPort is a free loopback port, never Redis's default.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 6379 {
			return port
		}
	}
}
