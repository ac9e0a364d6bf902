package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// An excerpt of INFO all from Redis 7.0.
const infoSample = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n" +
	"# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:0.750000\r\n\r\n" +
	"# Commandstats\r\n" +
	"cmdstat_publish:calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_evalsha:calls=5,usec=100,usec_per_call=20.00,rejected_calls=0,failed_calls=1\r\n" +
	"cmdstat_client|setname:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=7,usec=700,usec_per_call=100.00,rejected_calls=0,failed_calls=0\r\n" +
	"\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n"

func TestParseInfo(t *testing.T) {
	s, err := parseInfo(infoSample)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"publish": 12, "evalsha": 5, "client|setname": 2, "info": 7}
	if fmt.Sprint(s.Calls) != fmt.Sprint(want) || s.Version != "7.0.15" || s.CPU != 2 {
		t.Fatalf("got %+v", s)
	}
	for _, bad := range []string{
		"# Server\r\nredis_version:7.0.15\r\n", // no commandstats section
		"cmdstat_publish:usec=3,usec_per_call=1.0\r\n",
		"cmdstat_publish:calls=x,usec=3\r\n",
		"cmdstat_publish:calls=-1\r\n",
	} {
		if _, err := parseInfo(bad); err == nil {
			t.Errorf("parseInfo(%q) should fail", bad)
		}
	}
}

func TestDiffCalls(t *testing.T) {
	before := map[string]int64{"publish": 10, "info": 3, "hset": 4}
	after := map[string]int64{"publish": 2010, "info": 4, "hset": 4, "evalsha": 7}
	got := diffCalls(before, after)
	// The one INFO between the readings is herald-bench's own; hset did not run.
	if fmt.Sprint(got) != "map[evalsha:7 publish:2000]" {
		t.Fatalf("diff %v", got)
	}
	if c := topCommands(got); strings.Join(c, " ") != "publish evalsha" {
		t.Errorf("top %v", c)
	}
}

func TestReadBulk(t *testing.T) {
	for in, want := range map[string]string{
		"$5\r\nhello\r\n": "hello",
		"$0\r\n\r\n":      "",
	} {
		got, err := readBulk(bufio.NewReader(strings.NewReader(in)))
		if err != nil || got != want {
			t.Errorf("readBulk(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"-ERR unknown command\r\n", "+OK\r\n", "$9\r\nshort\r\n", "$x\r\n", ""} {
		if _, err := readBulk(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("readBulk(%q) should fail", in)
		}
	}
}

// fakeRedis answers INFO all over RESP with commandstats whose publish
// count is what calls returns.
type fakeRedis struct {
	ln    net.Listener
	mu    sync.Mutex
	calls func() map[string]int64
	infos int64
}

func newFakeRedis(t *testing.T, calls func() map[string]int64) *fakeRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRedis{ln: ln, calls: calls}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(nc)
		}
	}()
	return r
}

func (r *fakeRedis) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	// *2 $4 INFO $3 all: five lines.
	var req []string
	for range 5 {
		l, err := br.ReadString('\n')
		if err != nil {
			return
		}
		req = append(req, strings.TrimSpace(l))
	}
	if strings.Join(req, " ") != "*2 $4 INFO $3 all" {
		fmt.Fprintf(nc, "-ERR unexpected %q\r\n", req)
		return
	}
	r.mu.Lock()
	infos := r.infos
	r.infos++
	r.mu.Unlock()
	var b strings.Builder
	b.WriteString("# Server\r\nredis_version:7.0.0\r\n# CPU\r\nused_cpu_sys:0.5\r\nused_cpu_user:0.5\r\n# Commandstats\r\n")
	calls := r.calls()
	calls["info"] = infos // a reading counts the INFO calls before it
	for _, c := range topCommands(calls) {
		fmt.Fprintf(&b, "cmdstat_%s:calls=%d,usec=1,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n", c, calls[c])
	}
	fmt.Fprintf(nc, "$%d\r\n%s\r\n", b.Len(), b.String())
}

func TestReadRedisStats(t *testing.T) {
	r := newFakeRedis(t, func() map[string]int64 { return map[string]int64{"publish": 3} })
	s, err := ReadRedisStats(context.Background(), r.ln.Addr().String())
	if err != nil || s.Calls["publish"] != 3 || s.Version != "7.0.0" || s.CPU != 1 {
		t.Fatalf("%+v, %v", s, err)
	}
}
