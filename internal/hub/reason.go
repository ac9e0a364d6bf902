package hub

// CloseReason says why a connection ended. It is one closed set for every
// front end: each maps a reason to its own wire codes in one function, and
// the reason itself reaches the session's close handling, the logs (String)
// and the metrics (as the reason label).
type CloseReason uint8

const (
	// ReasonClientClosed: the client closed the connection, or it dropped.
	ReasonClientClosed CloseReason = iota
	// ReasonProtocolError: the client broke the transport's protocol
	// (malformed frame, invalid UTF-8, message over the size limit).
	ReasonProtocolError
	// ReasonSlowConsumer: the client did not read and its send queue filled.
	ReasonSlowConsumer
	// ReasonPongTimeout: the client did not answer a ping in time.
	ReasonPongTimeout
	// ReasonSigninTimeout: the app requires sign-in and the client did not
	// sign in or join an authorized channel in time.
	ReasonSigninTimeout
	// ReasonTerminated: the app's backend ended the user's connections.
	ReasonTerminated
	// ReasonShutdown: the node is shutting down.
	ReasonShutdown
	// ReasonOverCapacity: the node is at its connection limit.
	ReasonOverCapacity
	// ReasonOverQuota: the app is at its connection quota on this node.
	ReasonOverQuota
	// ReasonRefused: the connection was refused at admission for another
	// reason (unknown or disabled app, unsupported protocol version).
	ReasonRefused
	// ReasonUnauthorized: the connection's credentials were refused.
	ReasonUnauthorized

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonClientClosed:  "client_closed",
	ReasonProtocolError: "protocol_error",
	ReasonSlowConsumer:  "slow_consumer",
	ReasonPongTimeout:   "pong_timeout",
	ReasonSigninTimeout: "signin_timeout",
	ReasonTerminated:    "terminated",
	ReasonShutdown:      "shutdown",
	ReasonOverCapacity:  "over_capacity",
	ReasonOverQuota:     "over_quota",
	ReasonRefused:       "refused",
	ReasonUnauthorized:  "unauthorized",
}

// String is the reason's name as logs and metrics show it.
func (r CloseReason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// CloseReasons lists every reason, for metrics that want all label values
// present from the start.
func CloseReasons() []CloseReason {
	out := make([]CloseReason, numReasons)
	for i := range out {
		out[i] = CloseReason(i)
	}
	return out
}
