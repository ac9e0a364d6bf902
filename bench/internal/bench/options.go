package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Scenario names.
const (
	ScenarioFanout   = "fanout"
	ScenarioChannels = "channels"
	ScenarioPresence = "presence"
	ScenarioConnect  = "connect"
	ScenarioIdle     = "idle"
	ScenarioSlow     = "slow"
	ScenarioREST     = "rest"
)

// Scenarios lists every scenario, in the order the usage text gives them.
var Scenarios = []string{ScenarioFanout, ScenarioChannels, ScenarioPresence, ScenarioConnect, ScenarioIdle, ScenarioSlow, ScenarioREST}

// Options configure one run. The zero value of a field means its default,
// which depends on the scenario (see defaults).
type Options struct {
	Scenario string
	Label    string // names the run in JSON results and charts

	// The server: one node, or the nodes of a cluster. Subscribers are
	// spread over the WebSocket bases round-robin, publishers over the
	// REST bases.
	URL    string // WebSocket base, ws://host:port[/prefix]; several comma separated
	REST   string // REST base, http://host:port[/prefix], or several; from URL when empty
	AppID  string
	Key    string
	Secret string
	PID    int   // the server's process id, for CPU and memory; 0: not measured
	PIDs   []int // more server processes (a cluster's nodes): CPU summed over all, and per node
	// RedisAddr, host:port, is a Redis whose INFO commandstats is read
	// before and after the measured phase (a cluster's broker).
	RedisAddr string
	// Protocol is the subscribers' client protocol: ProtocolPusher, or
	// ProtocolCentrifugo (connect with a connection JWT signed with
	// JWTSecret, the app secret when empty, at /connection/websocket).
	Protocol  string
	JWTSecret string

	// Connections: subscribers, watchers (rest: 0, none, is the default).
	Conns       int
	Concurrency int           // dials in flight
	DialTimeout time.Duration // per dial, handshake and subscriptions included
	DialRetries int           // extra attempts for a dial that fails (zero: none)
	LocalAddrs  string        // "auto", "none", or a list such as 127.0.0.2-127.0.0.9,127.0.1.1
	Reader      string        // "epoll" or "goroutine"

	// Events.
	Events          int     // fanout, slow: events in all; channels: events per channel
	Publishers      int     // concurrent REST publishers
	Rate            float64 // publishes (or presence joins) per second over all publishers; 0: as fast as possible
	Size            int     // bytes of event data
	ChannelsPerConn int     // channels scenario
	Slow            int     // slow scenario: connections that never read
	SlowRecvBuffer  int     // their SO_RCVBUF

	// REST.
	Requests int // rest: trigger requests in all
	Batch    int // rest: events per request; above 1, POST /batch_events

	// Presence.
	PresenceChannels int
	Churners         int
	Cycles           int

	// Idle and connect.
	Duration  time.Duration
	Subscribe bool

	// Bounds.
	Timeout time.Duration // the whole run
	Drain   time.Duration // wait for stragglers once nothing more arrives

	Progress time.Duration // interval of progress lines; 0: none
	Log      io.Writer     // progress lines (stderr)

	// From URL, REST, PID and PIDs by defaults.
	urls, rests []string
	pids        []int
}

// splitList splits a comma separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// defaults fills zero fields.
func (o *Options) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	if o.URL == "" {
		o.URL = "ws://127.0.0.1:6001"
	}
	o.urls = splitList(o.URL)
	if len(o.urls) == 0 {
		o.urls = []string{o.URL}
	}
	o.URL = strings.Join(o.urls, ",")
	o.rests = splitList(o.REST)
	if len(o.rests) == 0 {
		o.rests = nil
		for _, u := range o.urls {
			o.rests = append(o.rests, restFromWS(u))
		}
	}
	o.REST = strings.Join(o.rests, ",")
	o.pids = nil
	if o.PID > 0 {
		o.pids = append(o.pids, o.PID)
	}
	for _, pid := range o.PIDs {
		if pid > 0 {
			o.pids = append(o.pids, pid)
		}
	}
	if o.AppID == "" {
		o.AppID = "app-id"
	}
	if o.Key == "" {
		o.Key = "app-key"
	}
	if o.Secret == "" {
		o.Secret = "app-secret"
	}
	if o.Protocol == "" {
		o.Protocol = ProtocolPusher
	}
	if o.JWTSecret == "" {
		o.JWTSecret = o.Secret
	}
	switch o.Scenario {
	case ScenarioConnect, ScenarioIdle:
		def(&o.Conns, 10000)
	case ScenarioSlow:
		def(&o.Conns, 500)
	case ScenarioREST:
		// Subscribers only when asked for: the REST API's own cost first.
	default:
		def(&o.Conns, 1000)
	}
	def(&o.Concurrency, 200)
	defDur(&o.DialTimeout, 15*time.Second)
	if o.LocalAddrs == "" {
		o.LocalAddrs = "auto"
	}
	if o.Reader == "" {
		o.Reader = "epoll"
		if !epollSupported {
			o.Reader = "goroutine"
		}
	}
	switch o.Scenario {
	case ScenarioChannels:
		def(&o.Events, 100)
	case ScenarioSlow:
		// Enough bytes (8 MiB) to get past the kernel buffers and the
		// server's queue of every slow connection, paced below saturation
		// so that the fast connections' latency means something.
		def(&o.Events, 2000)
		def(&o.Size, 4096)
		if o.Rate == 0 {
			o.Rate = 100
		}
	default:
		def(&o.Events, 1000)
	}
	if o.Scenario == ScenarioREST {
		def(&o.Publishers, 8)
		def(&o.Requests, 20000)
		def(&o.Batch, 1)
	}
	def(&o.Publishers, 4)
	def(&o.Size, 100)
	def(&o.ChannelsPerConn, 1)
	def(&o.Slow, 10)
	def(&o.SlowRecvBuffer, 4096)
	def(&o.PresenceChannels, 20)
	def(&o.Churners, 100)
	def(&o.Cycles, 20)
	defDur(&o.Duration, 30*time.Second)
	defDur(&o.Timeout, 5*time.Minute)
	defDur(&o.Drain, 10*time.Second)
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// validate rejects options no run could honour.
func (o *Options) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	if o.Scenario == ScenarioREST {
		check(o.Conns >= 0, "--conns must not be negative")
		check(o.Requests > 0, "--requests must be positive")
		check(o.Batch > 0 && o.Batch <= 1000, "--batch must be 1..1000 events per request")
	} else {
		check(o.Conns > 0, "--conns must be positive")
	}
	check(o.Concurrency > 0, "--concurrency must be positive")
	check(o.Events > 0, "--events must be positive")
	check(o.Publishers > 0, "--publishers must be positive")
	check(o.Rate >= 0, "--rate must not be negative")
	check(o.Size > 0 && o.Size <= 10240, "--size must be 1..10240 bytes (Pusher's event data limit)")
	check(o.ChannelsPerConn > 0, "--channels-per-conn must be positive")
	check(o.Slow >= 0, "--slow must not be negative")
	check(o.Timeout > 0, "--timeout must be positive")
	check(o.Reader == "epoll" || o.Reader == "goroutine", "--reader must be epoll or goroutine")
	check(o.Reader != "epoll" || epollSupported, "--reader epoll needs Linux")
	check(o.Protocol == ProtocolPusher || o.Protocol == ProtocolCentrifugo, "--protocol must be pusher or centrifugo")
	check(o.Protocol != ProtocolCentrifugo || o.Scenario == ScenarioFanout || o.Scenario == ScenarioChannels,
		"--protocol centrifugo serves the fanout and channels scenarios only")
	if o.Scenario == ScenarioPresence {
		check(o.PresenceChannels > 0 && o.Churners > 0 && o.Cycles > 0, "--channels, --churners and --cycles must be positive")
		perChannel := (o.Conns + o.Churners + o.PresenceChannels - 1) / o.PresenceChannels
		check(perChannel <= 100, "presence: %d members per channel is above Pusher's limit of 100; raise --channels", perChannel)
	}
	for _, s := range o.urls {
		u, err := url.Parse(s)
		check(err == nil && (u.Scheme == "ws" || u.Scheme == "wss") && u.Host != "", "--url %q is not a ws:// or wss:// URL", s)
	}
	for _, s := range o.rests {
		u, err := url.Parse(s)
		check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "--rest %q is not an http:// or https:// URL", s)
	}
	if o.RedisAddr != "" {
		_, _, err := net.SplitHostPort(o.RedisAddr)
		check(err == nil, "--redis-addr %q is not host:port", o.RedisAddr)
	}
	return errors.Join(errs...)
}

// restFromWS derives the REST base from the WebSocket base.
func restFromWS(ws string) string {
	switch {
	case strings.HasPrefix(ws, "wss://"):
		return "https://" + strings.TrimPrefix(ws, "wss://")
	case strings.HasPrefix(ws, "ws://"):
		return "http://" + strings.TrimPrefix(ws, "ws://")
	}
	return ws
}

// wsURL is the connection URL of the app on the first node, as pusher-js
// builds it.
func (o *Options) wsURL() string { return o.wsURLOf(o.urls[0]) }

// wsURLOf is the connection URL of the app at one WebSocket base.
func (o *Options) wsURLOf(base string) string {
	if o.Protocol == ProtocolCentrifugo {
		return strings.TrimSuffix(base, "/") + "/connection/websocket"
	}
	return strings.TrimSuffix(base, "/") + "/app/" + url.PathEscape(o.Key) + "?protocol=7&client=herald-bench&version=1.0&flash=false"
}

// nodes is how many WebSocket bases the connections are spread over.
func (o *Options) nodes() int { return len(o.urls) }

// perAddressConns is how many connections one local address should hold to
// one server address. Linux's connect() looks for a free port among half
// the ephemeral range first (those of one parity, leaving the others to
// bind), and the search turns into a scan of the whole range once that half
// is used up: with 19 000 connections from one address on the usual range,
// connect() cost the tool 240 µs instead of 37. So: half the range, less a
// margin for other sockets.
func perAddressConns() int {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, err1 := strconv.Atoi(f[0])
			b, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && b > a {
				lo, hi = a, b
			}
		}
	}
	return (hi - lo + 1) / 2 * 9 / 10
}

// localAddrs decides which source addresses dials use. "auto" spreads the
// connections over 127.0.0.1, 127.0.0.2, … when the server is on loopback and
// one address's ports would not suffice; "none" leaves the choice to the
// kernel.
func localAddrs(spec, target string, conns int) ([]net.IP, error) {
	switch spec {
	case "", "none":
		return nil, nil
	case "auto":
		per := perAddressConns()
		if conns <= per {
			return nil, nil
		}
		u, err := url.Parse(target)
		if err != nil {
			return nil, err
		}
		ips, err := net.LookupIP(u.Hostname())
		if err != nil || len(ips) == 0 || !ips[0].IsLoopback() || ips[0].To4() == nil {
			return nil, fmt.Errorf("%d connections need more than one source address; the server is not on IPv4 loopback, so give --local-addrs", conns)
		}
		n := (conns + per - 1) / per
		out := make([]net.IP, n)
		for i := range out {
			out[i] = net.IPv4(127, 0, byte((i+1)>>8), byte((i+1)&0xFF))
		}
		return out, nil
	}
	return parseAddrList(spec)
}

// parseAddrList parses "127.0.0.2-127.0.0.9,10.0.0.5": addresses and IPv4
// ranges whose ends differ in the last octet only.
func parseAddrList(spec string) ([]net.IP, error) {
	var out []net.IP
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, isRange := strings.Cut(part, "-")
		a := net.ParseIP(from)
		if a == nil {
			return nil, fmt.Errorf("--local-addrs: %q is not an IP address", from)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b := net.ParseIP(to)
		a4, b4 := a.To4(), b.To4()
		if a4 == nil || b4 == nil || !a4.Mask(net.CIDRMask(24, 32)).Equal(b4.Mask(net.CIDRMask(24, 32))) || a4[3] > b4[3] {
			return nil, fmt.Errorf("--local-addrs: range %q must be IPv4 within one /24, low to high", part)
		}
		for x := int(a4[3]); x <= int(b4[3]); x++ {
			out = append(out, net.IPv4(a4[0], a4[1], a4[2], byte(x)))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--local-addrs: no address given")
	}
	return out, nil
}
