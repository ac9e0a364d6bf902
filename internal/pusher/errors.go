package pusher

// Code is a Pusher protocol error or close code. The set is closed: every
// reason Herald refuses or ends a connection is one of these constants, and
// CloseAction tells what a Pusher client does on receiving it.
type Code int

const (
	CodeSSLOnly            Code = 4000 // app accepts TLS connections only
	CodeAppNotFound        Code = 4001 // unknown app key
	CodeAppDisabled        Code = 4003
	CodeOverQuota          Code = 4004 // app connection quota
	CodePathNotFound       Code = 4005
	CodeInvalidVersion     Code = 4006
	CodeUnsupportedProto   Code = 4007
	CodeNoProtocol         Code = 4008
	CodeUnauthorized       Code = 4009 // sign-in timeout, bad sign-in, terminated by the app
	CodeOverCapacity       Code = 4100 // server full, or this client too slow to keep up
	CodeReconnect          Code = 4200 // server shutting down: reconnect now
	CodePongTimeout        Code = 4201
	CodeInactive           Code = 4202
	CodeClientEventRefused Code = 4301 // sent as pusher:error only: closing with >= 4300 stops pusher-js for good
	CodeWatchlistLimit     Code = 4302
)

// Messages used by more than one caller, worded after Pusher's own.
const (
	MsgAppNotFound   = "Application does not exist"
	MsgAppDisabled   = "Application disabled"
	MsgOverQuota     = "Application is over connection quota"
	MsgOverCapacity  = "Over capacity"
	MsgShutdown      = "Server is shutting down; reconnect"
	MsgPongTimeout   = "Pong reply not received in time"
	MsgSlowClient    = "Client too slow: send queue limit exceeded"
	MsgSigninTimeout = "Connection not authorized within timeout"
	MsgTerminated    = "Connection terminated by the application"
	MsgTokenExpired  = "Subscription token expired; reconnect"
)

// Refusals of a second pusher:signin on a connection (see handleSignin).
const (
	MsgSigninInProgress    = "Sign-in refused: a sign-in of this connection is still in progress"
	MsgSigninOtherUser     = "Sign-in refused: connection is already signed in as another user"
	MsgSigninOtherUserData = "Sign-in refused: connection is already signed in with other user_data"
)

// MsgSigninRate refuses a sign-in over the user's budget on the node
// (presence_join_rate, formatted in): the connection stays, not signed in.
const MsgSigninRate = "Sign-in refused due to rate limit: this user signs in too often (%d per second)"
