package bench

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestParseAddrList(t *testing.T) {
	got, err := parseAddrList("127.0.0.2-127.0.0.4, 10.1.2.3,::1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "10.1.2.3", "::1"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if !got[i].Equal(net.ParseIP(want[i])) {
			t.Errorf("address %d: %v, want %s", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", "x", "127.0.0.9-127.0.0.2", "127.0.0.1-127.0.1.2", "127.0.0.1-::1"} {
		if _, err := parseAddrList(bad); err == nil {
			t.Errorf("parseAddrList(%q) should fail", bad)
		}
	}
}

func TestLocalAddrsAuto(t *testing.T) {
	per := perAddressConns()
	if addrs, err := localAddrs("auto", "ws://127.0.0.1:6001", per); err != nil || addrs != nil {
		t.Errorf("within one address's ports: %v %v", addrs, err)
	}
	addrs, err := localAddrs("auto", "ws://127.0.0.1:6001", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs)*per < 100_000 || len(addrs) > 100_000/per+1 {
		t.Errorf("%d addresses of %d ports for 100000 connections", len(addrs), per)
	}
	for i, a := range addrs {
		if !a.IsLoopback() || a.To4() == nil || (i > 0 && a.Equal(addrs[i-1])) {
			t.Errorf("address %d: %v", i, a)
		}
	}
	if _, err := localAddrs("auto", "ws://192.0.2.1:6001", 100_000); err == nil || !strings.Contains(err.Error(), "--local-addrs") {
		t.Errorf("remote server, many connections: %v", err)
	}
	if addrs, _ := localAddrs("none", "ws://127.0.0.1:6001", 100_000); addrs != nil {
		t.Errorf("none: %v", addrs)
	}
}

func TestOptionsDefaultsAndValidation(t *testing.T) {
	o := Options{Scenario: ScenarioFanout, URL: "wss://push.example.com"}
	o.defaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.REST != "https://push.example.com" || o.Conns != 1000 || o.Events != 1000 || o.Publishers != 4 {
		t.Errorf("defaults %+v", o)
	}
	if got := o.wsURL(); got != "wss://push.example.com/app/app-key?protocol=7&client=herald-bench&version=1.0&flash=false" {
		t.Errorf("ws URL %s", got)
	}
	s := Options{Scenario: ScenarioSlow}
	s.defaults()
	if s.Rate <= 0 || int64(s.Events)*int64(s.Size) < 8<<20-1<<20 {
		t.Errorf("slow defaults should be paced and carry several MiB per connection: %+v", s)
	}
	for _, bad := range []Options{
		{Scenario: ScenarioFanout, URL: "http://x"},
		{Scenario: ScenarioFanout, Size: 20000},
		{Scenario: ScenarioFanout, Reader: "threads"},
		{Scenario: ScenarioPresence, Conns: 1000, PresenceChannels: 5},
	} {
		bad.defaults()
		if err := bad.validate(); err == nil {
			t.Errorf("%+v should not validate", bad)
		}
	}
}

// A count given as 0 on the command line is refused, not taken as the
// default the zero value stands for in Options.
func TestCLIRefusesExplicitZeroCounts(t *testing.T) {
	for _, args := range [][]string{
		{"slow", "--slow", "0"},
		{"fanout", "--conns", "0"},
		{"presence", "--cycles=0"},
		{"rest", "--requests", "0"},
		{"rest", "--batch", "0"},
		{"fanout", "--publishers", "0"},
	} {
		var stdout, stderr strings.Builder
		if code := Main(context.Background(), append(args, "--url", "ws://127.0.0.1:1"), &stdout, &stderr); code != ExitError {
			t.Errorf("%v: exit %d, want %d", args, code, ExitError)
		}
		if !strings.Contains(stderr.String(), "must be positive") {
			t.Errorf("%v: stderr %q", args, stderr.String())
		}
	}
}

// Several nodes: the REST bases follow the WebSocket ones unless given,
// and every base is checked.
func TestOptionsSeveralNodes(t *testing.T) {
	o := Options{Scenario: ScenarioFanout, URL: "ws://127.0.0.1:7011, ws://127.0.0.1:7012,", PID: 5, PIDs: []int{6, 7}}
	o.defaults()
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.nodes() != 2 || o.REST != "http://127.0.0.1:7011,http://127.0.0.1:7012" || fmt.Sprint(o.pids) != "[5 6 7]" {
		t.Errorf("urls %v, rest %q, pids %v", o.urls, o.REST, o.pids)
	}
	if got := o.wsURLOf(o.urls[1]); !strings.HasPrefix(got, "ws://127.0.0.1:7012/app/app-key?") {
		t.Errorf("second node's URL %s", got)
	}
	for _, bad := range []Options{
		{Scenario: ScenarioFanout, URL: "ws://127.0.0.1:7011,http://127.0.0.1:7012"},
		{Scenario: ScenarioFanout, URL: "ws://127.0.0.1:7011", REST: "http://127.0.0.1:7011,ftp://x"},
		{Scenario: ScenarioFanout, RedisAddr: "127.0.0.1"},
	} {
		bad.defaults()
		if err := bad.validate(); err == nil {
			t.Errorf("%+v should not validate", bad)
		}
	}
	var l pidList
	if err := l.Set("12,34"); err != nil || l.String() != "12,34" {
		t.Errorf("pid list %v, %v", l, err)
	}
	for _, bad := range []string{"12,x", "0", "-3"} {
		var l pidList
		if err := l.Set(bad); err == nil {
			t.Errorf("--pid %q should be refused", bad)
		}
	}
}
