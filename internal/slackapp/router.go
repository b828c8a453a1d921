package slackapp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// Limits of the Router.
const (
	// MaxBody is the largest request body accepted: a view submission with
	// every input filled is a few KiB; anything near this is not Slack.
	MaxBody = 256 << 10
	// SignatureWindow is how far a request's timestamp may be from now
	// (slack-go's verifier enforces it; the replay guard remembers signatures
	// this long past their timestamp).
	SignatureWindow = 5 * time.Minute
	// HandlerTimeout bounds a handler: Slack shows an error when it has no
	// answer within 3 s, and the answer needs the rest.
	HandlerTimeout = 2500 * time.Millisecond
	// MaxRemembered bounds the replay guard's memory. Past it, with every
	// remembered signature still inside its window, requests are refused
	// (503) rather than risk accepting a replay: 10,000 requests in 5 minutes
	// is far beyond what people clicking buttons send.
	MaxRemembered = 10000
)

// Handlers a domain registers. Each gets a context that ends HandlerTimeout
// after the request arrived; it should only send a signal or update (or open a
// modal) and return. The InteractionCallback holds the message the person saw,
// personal data included: never log it.
type (
	ActionFunc  func(ctx context.Context, ic *slack.InteractionCallback, act *slack.BlockAction) error
	ViewFunc    func(ctx context.Context, ic *slack.InteractionCallback) (*slack.ViewSubmissionResponse, error)
	CommandFunc func(ctx context.Context, cmd slack.SlashCommand) (*slack.Msg, error)
)

// Texts the person sees when the Router cannot do what they asked.
const (
	textUnknownAction  = "This button is not handled by this app any more. Nothing was done."
	textUnknownCommand = "This command is not handled by this app. Nothing was done."
	textUnknownView    = "This form is not handled by this app any more. Nothing was saved."
	textInternal       = "Something went wrong on our side and nothing may have been recorded; try again in a minute. Reference: "
)

// Router verifies and dispatches what Slack posts to the public listener:
// interactions (button clicks, modal submissions) and slash commands.
//
// Every request must carry a valid v0 signature (slack-go's SecretsVerifier
// over the raw body with SLACK_SIGNING_SECRET) with a timestamp within
// SignatureWindow, and must not repeat a signature already accepted: a forged,
// stale, unsigned or replayed request gets 401 and no handler runs. The replay
// guard is per process; handlers stay idempotent (their signals carry an
// idempotency key) for a replay sent to another worker.
type Router struct {
	secret  string
	log     *zap.Logger
	replays *replayGuard
	now     func() time.Time
	// respond posts error replies to a response_url.
	respond *responder

	mu       sync.RWMutex
	actions  map[string]ActionFunc // by action_id prefix
	prefixes []string              // keys of actions, longest first
	views    map[string]ViewFunc
	commands map[string]CommandFunc
}

// NewRouter returns a Router that verifies requests with signingSecret. With an
// empty secret (Slack not configured) its handlers answer 503 to everything,
// so domains may register handlers whether or not Slack is configured.
func NewRouter(signingSecret string, log *zap.Logger) *Router {
	if log == nil {
		log = zap.NewNop()
	}
	return &Router{
		secret: signingSecret, log: log, replays: newReplayGuard(MaxRemembered), now: time.Now,
		respond: newResponder(&http.Client{Timeout: 5 * time.Second}),
		actions: map[string]ActionFunc{}, views: map[string]ViewFunc{}, commands: map[string]CommandFunc{},
	}
}

// OnAction routes block actions whose action_id starts with actionIDPrefix
// (e.g. "access-review:") to f; the longest matching prefix wins. Register
// before serving; registering a prefix twice panics.
func (r *Router) OnAction(actionIDPrefix string, f ActionFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if actionIDPrefix == "" || f == nil {
		panic("slackapp: OnAction needs a prefix and a handler")
	}
	if _, dup := r.actions[actionIDPrefix]; dup {
		panic("slackapp: action prefix " + actionIDPrefix + " registered twice")
	}
	r.actions[actionIDPrefix] = f
	r.prefixes = append(r.prefixes, actionIDPrefix)
	slices.SortFunc(r.prefixes, func(a, b string) int { return len(b) - len(a) })
}

// OnView routes modal submissions with this callback_id to f.
func (r *Router) OnView(callbackID string, f ViewFunc) {
	register(r, r.views, "view callback id", callbackID, f, callbackID != "" && f != nil)
}

// OnCommand routes the slash command (e.g. "/incident") to f.
func (r *Router) OnCommand(command string, f CommandFunc) {
	register(r, r.commands, "command (starting with /)", command, f, strings.HasPrefix(command, "/") && f != nil)
}

// register adds f under key, panicking on a registration mistake.
func register[F any](r *Router, m map[string]F, what, key string, f F, valid bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !valid {
		panic("slackapp: a " + what + " and a handler are required")
	}
	if _, dup := m[key]; dup {
		panic("slackapp: " + what + " " + key + " registered twice")
	}
	m[key] = f
}

// Interactions serves POST /slack/interactions (the app's Interactivity
// Request URL).
func (r *Router) Interactions() http.Handler { return r.verified(r.interaction) }

// Commands serves POST /slack/commands (every slash command's Request URL).
func (r *Router) Commands() http.Handler { return r.verified(r.command) }

// verified reads the body and lets next run only for a genuine, fresh, first
// delivery of a Slack request.
func (r *Router) verified(next func(w http.ResponseWriter, req *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if r.secret == "" {
			r.log.Warn("Slack request refused: SLACK_SIGNING_SECRET is not set, so Slack is not configured on this worker", zap.String("path", req.URL.Path))
			http.Error(w, "Slack is not configured on this worker", http.StatusServiceUnavailable)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				r.log.Warn("Slack request refused: body too large", zap.String("path", req.URL.Path), zap.Int64("limit", tooBig.Limit))
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read the request", http.StatusBadRequest)
			return
		}
		if reason := r.verify(req.Header, body); reason != "" {
			r.log.Warn("Slack request refused", zap.String("path", req.URL.Path), zap.String("reason", reason))
			http.Error(w, "invalid Slack request signature", http.StatusUnauthorized)
			return
		}
		next(w, req, body)
	})
}

// verify returns why the request is refused, or "" if it is genuine and new.
func (r *Router) verify(h http.Header, body []byte) string {
	sv, err := slack.NewSecretsVerifier(h, r.secret)
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return "unsigned"
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return "stale timestamp"
	case err != nil:
		return "malformed signature or timestamp"
	}
	if _, err := sv.Write(body); err != nil {
		return "cannot hash the body"
	}
	if err := sv.Ensure(); err != nil {
		return "bad signature"
	}
	// The verifier checked the timestamp parses and is within the window.
	ts, _ := strconv.ParseInt(h.Get("X-Slack-Request-Timestamp"), 10, 64)
	switch r.replays.admit(h.Get("X-Slack-Request-Timestamp")+":"+strings.ToLower(h.Get("X-Slack-Signature")),
		time.Unix(ts, 0).Add(SignatureWindow), r.now()) {
	case replayed:
		return "replayed"
	case full:
		return "replay guard full"
	}
	return ""
}

// interaction dispatches a verified interaction payload.
func (r *Router) interaction(w http.ResponseWriter, req *http.Request, body []byte) {
	parsed := req.Clone(req.Context())
	parsed.Body = io.NopCloser(bytes.NewReader(body))
	parsed.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	ic, err := slack.InteractionCallbackParse(parsed)
	if err != nil {
		r.log.Warn("Slack interaction refused: no readable payload", zap.String("error", errorKind(err)))
		http.Error(w, "no readable interaction payload", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), HandlerTimeout)
	defer cancel()
	log := r.log.With(zap.String("interaction", string(ic.Type)), zap.String("user", ic.User.ID), zap.String("team", ic.Team.ID))
	switch ic.Type {
	case slack.InteractionTypeBlockActions:
		r.blockActions(ctx, w, &ic, log)
	case slack.InteractionTypeViewSubmission:
		r.viewSubmission(ctx, w, &ic, log.With(zap.String("callbackId", ic.View.CallbackID)))
	default:
		// view_closed, shortcuts and the like: acknowledged, nothing to do.
		log.Debug("Slack interaction ignored")
		w.WriteHeader(http.StatusOK)
	}
}

// blockActions runs the handler of each action (Slack sends one per click) and
// acknowledges once they returned; an error goes back to the person through
// the response_url, after the acknowledgement.
func (r *Router) blockActions(ctx context.Context, w http.ResponseWriter, ic *slack.InteractionCallback, log *zap.Logger) {
	var reply string
	for _, act := range ic.ActionCallback.BlockActions {
		alog := log.With(zap.String("actionId", act.ActionID))
		f := r.action(act.ActionID)
		if f == nil {
			alog.Warn("Slack action with no handler")
			reply = textUnknownAction
			break
		}
		if err := f(ctx, ic, act); err != nil {
			reply = r.errorText(err, alog)
			break
		}
		alog.Info("Slack action handled")
	}
	w.WriteHeader(http.StatusOK)
	if reply == "" {
		return
	}
	if ic.ResponseURL == "" {
		log.Warn("Cannot tell the person why their action failed: the interaction has no response_url")
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.respond.post(ctx, ic.ResponseURL, Reply{Text: reply, Ephemeral: true}); err != nil {
			log.Warn("Cannot tell the person why their action failed", zap.Error(err))
		}
	}()
}

// action returns the handler of the longest registered prefix of actionID.
func (r *Router) action(actionID string) ActionFunc {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.prefixes {
		if strings.HasPrefix(actionID, p) {
			return r.actions[p]
		}
	}
	return nil
}

// viewSubmission runs the modal's handler and answers with its response; an
// error is shown on the modal itself.
func (r *Router) viewSubmission(ctx context.Context, w http.ResponseWriter, ic *slack.InteractionCallback, log *zap.Logger) {
	r.mu.RLock()
	f := r.views[ic.View.CallbackID]
	r.mu.RUnlock()
	var resp *slack.ViewSubmissionResponse
	if f == nil {
		log.Warn("Slack view submission with no handler")
		resp = errorView(ic, UserError{Message: textUnknownView})
	} else {
		var err error
		if resp, err = f(ctx, ic); err != nil {
			ue, ok := asUserError(err)
			if !ok {
				ue = UserError{Message: r.errorText(err, log)}
			} else {
				log.Info("Slack view submission refused", zap.String("reason", ue.Message))
			}
			resp = errorView(ic, ue)
		} else {
			log.Info("Slack view submission handled")
		}
	}
	if resp == nil {
		// An empty 200 closes the modal.
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, resp)
}

// errorView shows ue on the modal: on its field, else on the first input
// block, else in a small modal pushed on top.
func errorView(ic *slack.InteractionCallback, ue UserError) *slack.ViewSubmissionResponse {
	field := ue.Field
	if field == "" {
		for _, b := range ic.View.Blocks.BlockSet {
			if in, ok := b.(*slack.InputBlock); ok && in.BlockID != "" {
				field = in.BlockID
				break
			}
		}
	}
	if field != "" {
		return slack.NewErrorsViewSubmissionResponse(map[string]string{field: ue.Message})
	}
	return slack.NewPushViewSubmissionResponse(&slack.ModalViewRequest{
		Type:  slack.VTModal,
		Title: slack.NewTextBlockObject(slack.PlainTextType, "Not done", false, false),
		Close: slack.NewTextBlockObject(slack.PlainTextType, "Back", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, ue.Message, false, false), nil, nil),
		}},
	})
}

// command runs the slash command's handler and answers with its message,
// ephemeral unless the handler says otherwise.
func (r *Router) command(w http.ResponseWriter, req *http.Request, body []byte) {
	parsed := req.Clone(req.Context())
	parsed.Body = io.NopCloser(bytes.NewReader(body))
	parsed.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slack.SlashCommandParse(parsed)
	if err == nil && parsed.PostForm.Get("ssl_check") == "1" {
		// Slack checking the certificate of a command's URL: nothing to run.
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil || cmd.Command == "" {
		r.log.Warn("Slack command refused: no readable command", zap.String("error", errorKind(err)))
		http.Error(w, "no readable slash command", http.StatusBadRequest)
		return
	}
	log := r.log.With(zap.String("command", cmd.Command), zap.String("user", cmd.UserID), zap.String("team", cmd.TeamID), zap.String("channel", cmd.ChannelID))
	r.mu.RLock()
	f := r.commands[cmd.Command]
	r.mu.RUnlock()
	if f == nil {
		log.Warn("Slack command with no handler")
		writeJSON(w, &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: textUnknownCommand})
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), HandlerTimeout)
	defer cancel()
	msg, err := f(ctx, cmd)
	if err != nil {
		writeJSON(w, &slack.Msg{ResponseType: slack.ResponseTypeEphemeral, Text: r.errorText(err, log)})
		return
	}
	log.Info("Slack command handled")
	if msg == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	if msg.ResponseType == "" {
		msg.ResponseType = slack.ResponseTypeEphemeral
	}
	writeJSON(w, msg)
}

// errorText is what the person sees for a handler's error: a UserError's
// message, or a generic text with a reference that is in the log beside the
// error.
func (r *Router) errorText(err error, log *zap.Logger) string {
	if ue, ok := asUserError(err); ok {
		log.Info("Slack request refused", zap.String("reason", ue.Message))
		return ue.Message
	}
	ref := newRef()
	log.Error("Slack handler failed", zap.String("ref", ref), zap.Error(err))
	return textInternal + ref
}

func newRef() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// errorKind names a parse failure without its text (which can quote the payload).
func errorKind(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "empty"
	case errors.As(err, &se):
		return "malformed JSON"
	case errors.As(err, &te):
		return "unexpected JSON field type " + te.Field
	}
	return "malformed form"
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
