package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Exit codes of Main.
const (
	ExitOK         = 0 // the run completed: everything delivered
	ExitError      = 1 // the run could not start, or bad usage
	ExitIncomplete = 3 // the run ended, but with failures, losses or a timeout
)

const usageHead = `herald-bench measures a Pusher Channels compatible server (Herald or any other)
through the Pusher protocol only: WebSocket protocol 7 and the signed REST API.

Usage:
  herald-bench <scenario> [flags]
  herald-bench chart [-o chart.png] [--metrics m1,m2] result.json...
  herald-bench floor [--addr 127.0.0.1:7005] [--loops N]

Scenarios:
  fanout    --conns subscribers of one channel; --events published over REST by
            --publishers, as fast as possible or --rate per second
  channels  --conns connections with --channels-per-conn channels each; --events
            to every channel (REST "channels", 100 per request)
  presence  --conns watchers on --channels presence channels; --churners join and
            leave --cycles times each; every watcher checks every member event
  connect   connection storm: --conns connections, --concurrency dials in flight
  idle      --conns connections (optionally --subscribe) held for --duration
  slow      fanout plus --slow connections that never read: the fast ones'
            latency, and whether the server cut the slow ones (4100)
  rest      --requests signed triggers (POST /apps/<id>/events; with --batch
            above 1, /batch_events with that many events each) sent by
            --publishers keep-alive HTTP clients, as fast as possible or
            --rate per second; --conns subscribers (default none) of the one
            channel must each get every event. Reports requests/s, request
            latency, events/s and, with --pid, server CPU per request and per
            event

floor is not a scenario but a server: the least a Pusher WebSocket server can
do per connection (Linux), to measure connect and idle against.

A cluster is measured through all its nodes: --url (and --rest) take the nodes'
bases comma separated, subscribers are spread over them round-robin and
publishers over their REST endpoints; --pid takes every node's process id, and
--redis-addr the Redis they share, whose commands during the run are counted.

With --protocol centrifugo the subscribers are Centrifugo clients (JSON protocol, a
connection JWT minted with HS256); events are still published over the Pusher REST API.

Every event carries its sequence number and publish time; each connection checks it
got every event exactly once and in order. Progress goes to stderr, the result to
stdout (a table, or --json). Exit status: 0 complete, 3 incomplete or timed out,
1 error.

Flags:
`

// Main runs the command line: herald-bench <scenario|chart> [flags].
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fs, _ := newFlagSet(stderr)
		fmt.Fprint(stderr, usageHead)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		if len(args) == 0 {
			return ExitError
		}
		return ExitOK
	}
	if args[0] == "chart" {
		return chartMain(args[1:], stdout, stderr)
	}
	if args[0] == "floor" {
		return floorMain(ctx, args[1:], stderr)
	}
	scenario := args[0]
	if !slices.Contains(Scenarios, scenario) {
		fmt.Fprintf(stderr, "herald-bench: unknown scenario %q (want one of %s, chart or floor)\n", scenario, strings.Join(Scenarios, ", "))
		return ExitError
	}
	fs, f := newFlagSet(stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitError
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald-bench: unexpected argument %q\n", fs.Arg(0))
		return ExitError
	}
	if err := explicitZeros(fs, scenario); err != nil {
		fmt.Fprintln(stderr, "herald-bench:", err)
		return ExitError
	}
	o := f.opts
	o.Scenario = scenario
	o.Log = stderr
	if f.quiet {
		o.Progress = 0
	}
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "herald-bench:", err)
			return ExitError
		}
		pprof.StartCPUProfile(pf)
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	res, err := Run(ctx, o)
	if res == nil {
		fmt.Fprintln(stderr, "herald-bench:", err)
		return ExitError
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	if f.json {
		if werr := WriteJSON(stdout, res); werr != nil {
			fmt.Fprintln(stderr, "herald-bench:", werr)
			return ExitError
		}
	} else {
		WriteTable(stdout, res)
	}
	if !res.Complete || res.TimedOut {
		return ExitIncomplete
	}
	return ExitOK
}

// positiveFlags are the counts that Options treat as "use the default" when
// zero: given as 0 on the command line they are an error, not the default.
var positiveFlags = []string{"conns", "concurrency", "events", "publishers", "size",
	"channels-per-conn", "slow", "slow-rcvbuf", "channels", "churners", "cycles", "requests", "batch"}

func explicitZeros(fs *flag.FlagSet, scenario string) error {
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		if scenario == ScenarioREST && f.Name == "conns" {
			return // no subscribers: the default, and as good as said
		}
		if slices.Contains(positiveFlags, f.Name) && f.Value.String() == "0" {
			errs = append(errs, fmt.Errorf("--%s must be positive", f.Name))
		}
	})
	return errors.Join(errs...)
}

type cliFlags struct {
	opts       Options
	json       bool
	quiet      bool
	cpuProfile string
}

func newFlagSet(stderr io.Writer) (*flag.FlagSet, *cliFlags) {
	f := &cliFlags{}
	o := &f.opts
	fs := flag.NewFlagSet("herald-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.URL, "url", "ws://127.0.0.1:6001", "WebSocket base URL of the server (the client connects to <url>/app/<key>); for a cluster, the nodes' comma separated: connections are spread over them round-robin")
	fs.StringVar(&o.REST, "rest", "", "REST base URL, or several comma separated: publisher k sends through the k-th mod their number (default: each --url with http(s))")
	fs.StringVar(&o.AppID, "app-id", "app-id", "app id (REST path /apps/<id>)")
	fs.StringVar(&o.Key, "key", "app-key", "app key")
	fs.StringVar(&o.Secret, "secret", "app-secret", "app secret (signs REST requests and private/presence subscriptions)")
	fs.Var((*pidList)(&o.PIDs), "pid", "server process id: report its CPU and memory from /proc; for a cluster, the nodes' comma separated: CPU and memory summed over them, and per node")
	fs.StringVar(&o.RedisAddr, "redis-addr", "", "host:port of the Redis a cluster runs on: report the commands it ran during the measured phase (INFO commandstats), in all, by command and per event or join")
	fs.StringVar(&o.Protocol, "protocol", ProtocolPusher, "subscribers' protocol: pusher, or centrifugo (<url>/connection/websocket, a connection JWT; fanout and channels only)")
	fs.StringVar(&o.JWTSecret, "jwt-secret", "", "centrifugo: HMAC key of the connection JWTs (default: --secret)")
	fs.StringVar(&o.Label, "label", "", "name of the run in JSON results and charts")

	fs.IntVar(&o.Conns, "conns", 0, "connections (subscribers, watchers) (default 1000; slow 500; connect and idle 10000; rest 0)")
	fs.IntVar(&o.Concurrency, "concurrency", 200, "dials in flight")
	fs.DurationVar(&o.DialTimeout, "dial-timeout", 15*time.Second, "per dial: TCP, WebSocket handshake, connection_established, subscriptions")
	fs.IntVar(&o.DialRetries, "retries", 2, "extra attempts for a failed dial")
	fs.StringVar(&o.LocalAddrs, "local-addrs", "auto", "source addresses: auto (127.0.0.1-N when one address lacks ports), none, or a list like 127.0.0.2-127.0.0.9")
	fs.StringVar(&o.Reader, "reader", "", "how connections are read: epoll (default on Linux) or goroutine (one per connection)")

	fs.IntVar(&o.Events, "events", 0, "events: in all (fanout, slow: default 1000, 2000) or per channel (channels: default 100)")
	fs.IntVar(&o.Publishers, "publishers", 0, "concurrent REST publishers, each on a keep-alive connection of its own with rest (default 4; rest 8)")
	fs.Float64Var(&o.Rate, "rate", 0, "publish requests (presence: joins) per second over all publishers; 0 sends as fast as possible (slow: default 100)")
	fs.IntVar(&o.Size, "size", 0, "bytes of event data (default 100; slow 4096)")
	fs.IntVar(&o.Requests, "requests", 0, "rest: trigger requests in all (default 20000)")
	fs.IntVar(&o.Batch, "batch", 0, "rest: events per request; above 1, they go to /batch_events (default 1)")
	fs.IntVar(&o.ChannelsPerConn, "channels-per-conn", 1, "channels: channels per connection")
	fs.IntVar(&o.Slow, "slow", 10, "slow: connections that never read")
	fs.IntVar(&o.SlowRecvBuffer, "slow-rcvbuf", 4096, "slow: SO_RCVBUF of the connections that never read")

	fs.IntVar(&o.PresenceChannels, "channels", 20, "presence: presence channels")
	fs.IntVar(&o.Churners, "churners", 100, "presence: connections that join and leave")
	fs.IntVar(&o.Cycles, "cycles", 20, "presence: join/leave cycles per churner")

	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "idle: how long to hold the connections")
	fs.BoolVar(&o.Subscribe, "subscribe", false, "connect, idle: subscribe each connection to a channel of its own")

	fs.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "after publishing, give up once nothing new arrived for this long")
	fs.DurationVar(&o.Progress, "progress", time.Second, "interval of progress lines on stderr (0: none)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write herald-bench's own CPU profile to this file")
	return fs, f
}

// pidList is the --pid flag: process ids, comma separated.
type pidList []int

func (l *pidList) String() string {
	if l == nil {
		return ""
	}
	var parts []string
	for _, p := range *l {
		parts = append(parts, strconv.Itoa(p))
	}
	return strings.Join(parts, ",")
}

func (l *pidList) Set(s string) error {
	for _, part := range splitList(s) {
		p, err := strconv.Atoi(part)
		if err != nil || p <= 0 {
			return fmt.Errorf("%q is not a process id", part)
		}
		*l = append(*l, p)
	}
	return nil
}
