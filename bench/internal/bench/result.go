package bench

import "time"

// Result is everything one run measured. It is what --json prints and what
// the chart command reads.
type Result struct {
	Scenario string    `json:"scenario"`
	Label    string    `json:"label,omitempty"`
	Target   string    `json:"target"` // the WebSocket base, or the nodes' comma separated
	Reader   string    `json:"reader"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	TimedOut bool      `json:"timed_out"`
	// Complete: every connection was established and, where events were
	// sent, every connection got every event exactly once and in order.
	Complete bool   `json:"complete"`
	Params   Params `json:"params"`

	Connections ConnResult      `json:"connections"`
	Publish     *PublishResult  `json:"publish,omitempty"`
	Delivery    *DeliveryResult `json:"delivery,omitempty"`
	Latency     *LatencySummary `json:"latency,omitempty"`
	// Server is the server process, or the sum over a cluster's nodes,
	// which ServerNodes then gives one by one.
	Server      *ProcResult     `json:"server,omitempty"`
	ServerNodes []ProcResult    `json:"server_nodes,omitempty"`
	Redis       *RedisResult    `json:"redis,omitempty"`
	Client      ProcResult      `json:"client"`
	Slow        *SlowResult     `json:"slow,omitempty"`
	Presence    *PresenceResult `json:"presence,omitempty"`
	Idle        *IdleResult     `json:"idle,omitempty"`
	REST        *RESTResult     `json:"rest,omitempty"`
	Errors      []string        `json:"errors,omitempty"`
}

// Params echoes the options that shaped the run.
type Params struct {
	Conns            int     `json:"conns"`
	Concurrency      int     `json:"concurrency"`
	Events           int     `json:"events,omitempty"`
	Publishers       int     `json:"publishers,omitempty"`
	Rate             float64 `json:"rate,omitempty"`
	Size             int     `json:"size,omitempty"`
	ChannelsPerConn  int     `json:"channels_per_conn,omitempty"`
	Slow             int     `json:"slow,omitempty"`
	PresenceChannels int     `json:"presence_channels,omitempty"`
	Churners         int     `json:"churners,omitempty"`
	Cycles           int     `json:"cycles,omitempty"`
	DurationSeconds  float64 `json:"duration_seconds,omitempty"`
	Subscribe        bool    `json:"subscribe,omitempty"`
	Requests         int     `json:"requests,omitempty"`
	Batch            int     `json:"batch,omitempty"`
}

// ConnResult describes the connection phase.
type ConnResult struct {
	Target      int     `json:"target"`
	Established int     `json:"established"`
	Failed      int     `json:"failed"`
	Attempts    int64   `json:"attempts"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	LocalAddrs  int     `json:"local_addrs,omitempty"`
	// PerNode is the established connections by node, with several.
	PerNode []int `json:"per_node,omitempty"`
	// Handshake: dial start → pusher:connection_established.
	Handshake LatencySummary `json:"handshake"`
	// ClosedByServer counts connections the server closed (or that broke)
	// while the benchmark still wanted them.
	ClosedByServer uint64 `json:"closed_by_server"`
	PusherErrors   uint64 `json:"pusher_errors"`
}

// PublishResult describes the REST side.
type PublishResult struct {
	Mode          string         `json:"mode"` // burst or paced
	Requests      int64          `json:"requests"`
	Errors        int64          `json:"errors"`
	ChannelEvents int64          `json:"channel_events"` // requests × channels per request
	Seconds       float64        `json:"seconds"`
	PerSecond     float64        `json:"per_second"`          // requests per second
	Latency       LatencySummary `json:"latency"`             // request round trip
	Endpoints     int            `json:"endpoints,omitempty"` // REST bases the publishers were spread over, with several
}

// DeliveryResult is the completeness check and the throughput.
type DeliveryResult struct {
	Expected uint64 `json:"expected"`
	Counts
	Missing   uint64  `json:"missing"`
	Seconds   float64 `json:"seconds"`    // first publish → last first receipt
	PerSecond float64 `json:"per_second"` // first receipts per second
	Complete  bool    `json:"complete"`
}

// ProcResult is a process's CPU and memory over the run.
type ProcResult struct {
	PID int `json:"pid"`
	// PIDs are the processes a sum is over (a cluster's nodes); PID is
	// then 0.
	PIDs       []int   `json:"pids,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"` // over the measured phase
	// CPUPerUnitUS is CPU microseconds per delivered message (message
	// scenarios) or per connection (connect, idle).
	CPUPerUnitUS float64 `json:"cpu_per_unit_us,omitempty"`
	Unit         string  `json:"unit,omitempty"`
	RSSStart     int64   `json:"rss_start_bytes"`
	RSSConnected int64   `json:"rss_connected_bytes"`
	RSSEnd       int64   `json:"rss_end_bytes"`
	// RSSPerConn is (connected − start) / established connections.
	RSSPerConn float64 `json:"rss_per_conn_bytes"`
}

// SlowResult is the slow scenario's verdict on the connections that never read.
type SlowResult struct {
	Conns        int            `json:"conns"`
	Closed4100   int            `json:"closed_4100"`
	ClosedOther  map[string]int `json:"closed_other,omitempty"` // by close code
	Dropped      int            `json:"dropped"`                // closed without a close frame
	StillOpen    int            `json:"still_open"`
	Events       uint64         `json:"events_received"`
	BytesPerConn int64          `json:"bytes_sent_per_conn"` // what the server had to deliver to each
}

// PresenceResult is the presence scenario's churn and member events.
type PresenceResult struct {
	Joins          int64          `json:"joins"`
	JoinErrors     int64          `json:"join_errors"`
	JoinsPerSecond float64        `json:"joins_per_second"`
	JoinLatency    LatencySummary `json:"join_latency"`   // subscribe → subscription_succeeded
	RemovedLatency LatencySummary `json:"member_removed"` // unsubscribe → member_removed at watchers
}

// IdleResult is the idle scenario's hold.
type IdleResult struct {
	HeldSeconds float64 `json:"held_seconds"`
	Alive       int     `json:"alive"`
	PongsSent   uint64  `json:"pongs_sent"`
}

// RESTResult is the rest scenario's trigger requests and what they cost.
type RESTResult struct {
	Endpoint          string         `json:"endpoint"` // the path signed: /apps/{id}/events or /apps/{id}/batch_events
	Batch             int            `json:"batch"`    // events per request
	Requests          int64          `json:"requests"` // sent, answered or not
	Errors            int64          `json:"errors"`
	Events            int64          `json:"events"`  // in the requests answered 200
	Seconds           float64        `json:"seconds"` // first request sent → last answer
	RequestsPerSecond float64        `json:"requests_per_second"`
	EventsPerSecond   float64        `json:"events_per_second"`
	Latency           LatencySummary `json:"latency"` // request sent → answer read
	// CPU over the publishing (and, with subscribers, the delivery) per
	// request and per event sent: the server's with --pid, herald-bench's
	// own (its subscribers' reading included) always.
	ServerCPUPerRequestUS float64 `json:"server_cpu_per_request_us,omitempty"`
	ServerCPUPerEventUS   float64 `json:"server_cpu_per_event_us,omitempty"`
	ClientCPUPerRequestUS float64 `json:"client_cpu_per_request_us"`
	ClientCPUPerEventUS   float64 `json:"client_cpu_per_event_us"`
	Endpoints             int     `json:"endpoints,omitempty"` // REST bases the publishers were spread over, with several
}
