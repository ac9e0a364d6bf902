package redisbroker_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/broker/redisbroker"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// startSentinel runs redis-server in sentinel mode monitoring master as
// "mymaster" and returns its address.
func startSentinel(t *testing.T, master *redistest.Server) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	host, mport, _ := strings.Cut(master.Addr(), ":")
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	cfg := "port " + strconv.Itoa(port) + "\nbind 127.0.0.1\ndir " + dir + "\n" +
		"sentinel monitor mymaster " + host + " " + mport + " 1\n"
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf, "--sentinel")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	waitFor(t, "the sentinel", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr
}

func TestSentinel(t *testing.T) {
	srv := redistest.Start(t)
	sentinel := startSentinel(t, srv)
	b := newBroker(t, srv, nil, func(o *redisbroker.Options) {
		// The URL's database applies to the master; no host is needed.
		o.URL = "redis://127.0.0.1/0"
		o.SentinelMaster = "mymaster"
		o.SentinelAddrs = []string{sentinel}
	})
	var got = make(chan broker.Message, 1)
	b.SetHandler(func(m broker.Message) { got <- m })
	b.SetLocalCount("app", "ch", 1)
	if err := b.AwaitInterest(t.Context(), "app", "ch"); err != nil {
		t.Fatal(err)
	}
	m := broker.Message{AppID: "app", Channel: "ch", Event: "via-sentinel"}
	if err := b.Publish(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if !r.Equal(&m) {
			t.Fatalf("received %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery through the sentinel-discovered master")
	}
}
