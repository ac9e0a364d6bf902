package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRedisOffByDefault(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Enabled() || c.Redis.URL != "" {
		t.Fatalf("cluster mode on without a URL: %+v", c.Redis)
	}
	// Settings that only matter in cluster mode are harmless without it.
	c, err = Load([]string{"--node-id", "n1"}, env(map[string]string{"HERALD_REDIS_PREFIX": "p", "HERALD_REDIS_NODE_TTL": "30s"}))
	if err != nil || c.Redis.Enabled() {
		t.Fatalf("node id and prefix without a URL: %v, %+v", err, c.Redis)
	}
}

func TestRedisDefaults(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"HERALD_REDIS_URL": "redis://127.0.0.1:6380/2"}))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redis
	if !r.Enabled() || r.URL != "redis://127.0.0.1:6380/2" || r.Prefix != "herald" || r.NodeID != "" ||
		r.NodeTTL != 20*time.Second || r.RefreshInterval != 5*time.Second {
		t.Fatalf("defaults: %+v", r)
	}
	if tc, err := r.TLSConfig(); err != nil || tc != nil {
		t.Fatalf("redis:// has TLS settings %v, %v", tc, err)
	}
}

func TestRedisPrecedence(t *testing.T) {
	file := writeFile(t, `
redis:
  url: "redis://file:6379/0"
  prefix: from-file
  node_id: file-node
  node_ttl: 30s
  refresh_interval: 10s
  sentinel:
    master: file-master
    addrs: ["s1:26379", "s2:26379"]
`)
	c, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redis
	if r.URL != "redis://file:6379/0" || r.Prefix != "from-file" || r.NodeID != "file-node" || r.NodeTTL != 30*time.Second ||
		r.RefreshInterval != 10*time.Second || r.Sentinel.Master != "file-master" || !slices.Equal(r.Sentinel.Addrs, []string{"s1:26379", "s2:26379"}) {
		t.Fatalf("from the file: %+v", r)
	}

	e := map[string]string{
		"HERALD_CONFIG":                 file,
		"HERALD_REDIS_URL":              "redis://env:6379/1",
		"HERALD_REDIS_PREFIX":           "from-env",
		"HERALD_NODE_ID":                "env-node",
		"HERALD_REDIS_NODE_TTL":         "9s",
		"HERALD_REDIS_REFRESH_INTERVAL": "3s",
		"HERALD_REDIS_SENTINEL_MASTER":  "env-master",
		"HERALD_REDIS_SENTINEL_ADDRS":   "a:1, b:2,,c:3",
	}
	c, err = Load(nil, env(e))
	if err != nil {
		t.Fatal(err)
	}
	r = c.Redis
	if r.URL != "redis://env:6379/1" || r.Prefix != "from-env" || r.NodeID != "env-node" || r.NodeTTL != 9*time.Second ||
		r.RefreshInterval != 3*time.Second || r.Sentinel.Master != "env-master" || !slices.Equal(r.Sentinel.Addrs, []string{"a:1", "b:2", "c:3"}) {
		t.Fatalf("env over the file: %+v", r)
	}

	c, err = Load([]string{"--redis-url", "redis://flag:6379/3", "--node-id", "flag-node"}, env(e))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://flag:6379/3" || c.Redis.NodeID != "flag-node" || c.Redis.Prefix != "from-env" {
		t.Fatalf("flags over env: %+v", c.Redis)
	}
}

func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	c, err := Load(nil, env(map[string]string{
		"HERALD_REDIS_URL":           "rediss://user:secret@redis.example:6380/0",
		"HERALD_REDIS_TLS_CA_FILE":   ca,
		"HERALD_REDIS_TLS_CERT_FILE": cert,
		"HERALD_REDIS_TLS_KEY_FILE":  key,
	}))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.Redis.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	// No server name: the TLS dialer checks the host it dials.
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "" || tc.InsecureSkipVerify {
		t.Fatalf("TLS config %+v", tc)
	}

	// From the file, with a server name and, for tests, no verification.
	c, err = Load([]string{"--config", writeFile(t, `
redis:
  url: "rediss://10.0.0.5:6380"
  tls:
    ca_file: "`+ca+`"
    server_name: redis.internal
    insecure_skip_verify: true
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	tc, err = c.Redis.TLSConfig()
	if err != nil || tc.ServerName != "redis.internal" || !tc.InsecureSkipVerify || tc.Certificates != nil {
		t.Fatalf("TLS config from the file %+v, %v", tc, err)
	}

	// rediss:// alone verifies with the system's roots.
	c, err = Load([]string{"--redis-url", "rediss://redis.example:6380"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tc, err = c.Redis.TLSConfig(); err != nil || tc == nil || tc.RootCAs != nil || tc.ServerName != "" {
		t.Fatalf("rediss:// alone: %+v, %v", tc, err)
	}
}

func TestRedisErrors(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTLSFiles(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	url := map[string]string{"HERALD_REDIS_URL": "redis://127.0.0.1:6379/0"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{"HERALD_REDIS_URL": url["HERALD_REDIS_URL"]}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tls := func(m map[string]string) map[string]string {
		m["HERALD_REDIS_URL"] = "rediss://127.0.0.1:6379/0"
		return m
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{name: "no scheme", env: map[string]string{"HERALD_REDIS_URL": "127.0.0.1:6379"}, want: "scheme must be redis:// or rediss://"},
		{name: "http scheme", args: []string{"--redis-url", "http://127.0.0.1:6379"}, want: "scheme must be redis:// or rediss://"},
		{name: "no host", env: map[string]string{"HERALD_REDIS_URL": "redis:///0"}, want: "has no host"},
		{name: "bad port", env: map[string]string{"HERALD_REDIS_URL": "redis://h:99999/0"}, want: "not a port number"},
		{name: "bad database", env: map[string]string{"HERALD_REDIS_URL": "redis://h:6379/zero"}, want: "not a database number"},
		{name: "unparseable", env: map[string]string{"HERALD_REDIS_URL": "redis://u:p@h:6379/%zz"}, want: "is not a URL"},
		{name: "unreadable CA", env: tls(map[string]string{"HERALD_REDIS_TLS_CA_FILE": filepath.Join(dir, "missing.pem")}), want: "redis.tls.ca_file"},
		{name: "CA not PEM", env: tls(map[string]string{"HERALD_REDIS_TLS_CA_FILE": notPEM}), want: "holds no PEM certificate"},
		{name: "unreadable cert", env: tls(map[string]string{"HERALD_REDIS_TLS_CERT_FILE": filepath.Join(dir, "missing.pem"), "HERALD_REDIS_TLS_KEY_FILE": key}), want: "redis.tls.cert_file"},
		{name: "key that is no key", env: tls(map[string]string{"HERALD_REDIS_TLS_CERT_FILE": cert, "HERALD_REDIS_TLS_KEY_FILE": ca}), want: "redis.tls.cert_file"},
		{name: "cert without key", env: tls(map[string]string{"HERALD_REDIS_TLS_CERT_FILE": cert}), want: "must be set together"},
		{name: "TLS files on redis://", env: with(map[string]string{"HERALD_REDIS_TLS_CA_FILE": ca}), want: "is not rediss://"},
		{name: "TLS without a URL", env: map[string]string{"HERALD_REDIS_TLS_CA_FILE": ca}, want: "redis.tls is set but redis.url"},
		{name: "sentinel without a URL", env: map[string]string{"HERALD_REDIS_SENTINEL_MASTER": "m", "HERALD_REDIS_SENTINEL_ADDRS": "s:1"}, want: "redis.sentinel is set but redis.url"},
		{name: "sentinel master without addrs", env: with(map[string]string{"HERALD_REDIS_SENTINEL_MASTER": "mymaster"}), want: "master is set without redis.sentinel.addrs"},
		{name: "sentinel addrs without master", env: with(map[string]string{"HERALD_REDIS_SENTINEL_ADDRS": "s:26379"}), want: "addrs is set without redis.sentinel.master"},
		{name: "sentinel addr without port", env: with(map[string]string{"HERALD_REDIS_SENTINEL_MASTER": "m", "HERALD_REDIS_SENTINEL_ADDRS": "s1"}), want: `"s1" is not host:port`},
		{name: "refresh equal to TTL", env: with(map[string]string{"HERALD_REDIS_NODE_TTL": "5s", "HERALD_REDIS_REFRESH_INTERVAL": "5s"}), want: "refresh_interval 5s must be less than redis.node_ttl 5s"},
		{name: "refresh over the default TTL", env: with(map[string]string{"HERALD_REDIS_REFRESH_INTERVAL": "1m"}), want: "must be less than redis.node_ttl 20s"},
		{name: "TTL under the default refresh", file: "redis:\n  url: redis://h:1\n  node_ttl: 3s\n", want: "refresh_interval 5s must be less than redis.node_ttl 3s"},
		{name: "tiny TTL", env: with(map[string]string{"HERALD_REDIS_NODE_TTL": "500ms", "HERALD_REDIS_REFRESH_INTERVAL": "100ms"}), want: "under 1s"},
		{name: "negative TTL", file: "redis:\n  url: redis://h:1\n  node_ttl: -1s\n", want: "must not be negative"},
		{name: "TTL not a duration", env: with(map[string]string{"HERALD_REDIS_NODE_TTL": "20"}), want: `HERALD_REDIS_NODE_TTL: "20" is not a duration`},
		{name: "refresh not a duration", env: with(map[string]string{"HERALD_REDIS_REFRESH_INTERVAL": "often"}), want: `HERALD_REDIS_REFRESH_INTERVAL: "often" is not a duration`},
		{name: "prefix with a space", env: with(map[string]string{"HERALD_REDIS_PREFIX": "my app"}), want: `redis.prefix "my app"`},
		{name: "prefix with a colon", env: with(map[string]string{"HERALD_REDIS_PREFIX": "herald:eu"}), want: `redis.prefix "herald:eu" contains ':'`},
		{name: "prefix too long", env: with(map[string]string{"HERALD_REDIS_PREFIX": strings.Repeat("p", 65)}), want: "longer than 64"},
		{name: "node id with a newline", args: []string{"--node-id", "a\nb"}, env: url, want: "redis.node_id"},
		{name: "unknown redis key", file: "redis:\n  url: redis://h:1\n  password: x\n", want: "password"},
		{name: "unknown tls key", file: "redis:\n  url: rediss://h:1\n  tls:\n    ca: x\n", want: "ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			c, err := Load(args, env(tt.env))
			if err == nil {
				t.Fatalf("Load accepted it: %+v", c.Redis)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// No error about a URL shows its password.
func TestRedisErrorsHidePassword(t *testing.T) {
	for _, u := range []string{
		"http://user:hunter2@h:6379",
		"redis://user:hunter2@h:99999",
		"redis://user:hunter2@h:6379/db",
		"redis://user:hunter2@h:6379/%zz",
		"redis://hunter2@h:6379/db",
		"rediss://:hunter2@h:6379/0\x7f",
	} {
		_, err := Load([]string{"--redis-url", u}, env(nil))
		if err == nil {
			t.Errorf("%q accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for a bad URL shows its password: %v", err)
		}
	}
	_, err := Load([]string{"--redis-url", "redis://u:hunter2@h:6379", "--config", writeFile(t, "redis:\n  tls:\n    ca_file: /x\n")}, env(nil))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("TLS on redis://: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:pass@h:6379/0":  "redis://user:xxxxx@h:6379/0",
		"redis://:pass@h:6379":        "redis://:xxxxx@h:6379",
		"redis://pass@h:6379":         "redis://xxxxx@h:6379",
		"rediss://h:6380/1":           "rediss://h:6380/1",
		"redis://u:p@h:6379/%zz":      "<unparseable URL>",
		"redis://user:p%40ss@h:6379/": "redis://user:xxxxx@h:6379/",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	r := Redis{URL: "redis://u:secret@h:1", Sentinel: RedisSentinel{Master: "m", Addrs: []string{"a:1", "b:2"}}}
	if got := r.Addr(); strings.Contains(got, "secret") || !strings.Contains(got, `sentinel master "m" via a:1,b:2`) {
		t.Errorf("Addr() = %q", got)
	}
}

// writeTLSFiles writes a self-signed CA certificate, and a client
// certificate and key, as PEM files in dir.
func writeTLSFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for p, b := range map[string][]byte{ca: certPEM, cert: certPEM, key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}
