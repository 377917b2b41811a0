package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// fairMailbox is the mailbox of session actors. For a kind whose storage
// never blocks (inline), a sender that finds the actor idle processes its
// own operation on its own goroutine, which costs no
// goroutine start and no hand-off (the point of protoactor's synchronized
// dispatcher); but it processes only that message. Messages that arrived
// meanwhile are handed to a fresh goroutine, so a caller never works for
// other callers: under a hot session, no request is held hostage draining a
// mailbox that others keep filling (the synchronized dispatcher's trap).
//
// Everything that may block runs on a goroutine of the mailbox's own, never
// on the sender's: every message of a kind whose storage may block (so that
// a caller can leave at its deadline while the storage is slow), and every
// passivation (so that the janitor, an evicting caller or Close never waits
// for one session's flush).
//
// One goroutine at a time processes the mailbox (running), system messages
// first, as protoactor's default mailbox does, and Suspend/Resume are
// honoured.
type fairMailbox struct {
	mu        sync.Mutex
	user      queue // protected by mu
	system    queue // protected by mu
	running   bool  // a goroutine is processing; protected by mu
	suspended bool  // protected by mu

	inline  bool // the sender may run its own operation; never changes
	invoker actor.MessageInvoker
}

func newFairMailbox(inline bool) func() actor.Mailbox {
	return func() actor.Mailbox { return &fairMailbox{inline: inline} }
}

// PostUserMessage implements actor.Mailbox.
func (m *fairMailbox) PostUserMessage(msg any) {
	_, passivation := msg.(passivate)
	m.mu.Lock()
	if m.running || m.suspended || !m.inline || passivation {
		m.user.push(msg)
		start := !m.running && !m.suspended
		if start {
			m.running = true
		}
		m.mu.Unlock()
		if start {
			go m.drain()
		}
		return
	}
	m.running = true
	m.mu.Unlock()
	m.invoke(msg, false)
	m.release()
}

// PostSystemMessage implements actor.Mailbox.
func (m *fairMailbox) PostSystemMessage(msg any) {
	m.mu.Lock()
	if m.running {
		m.system.push(msg)
		m.mu.Unlock()
		return
	}
	m.running = true
	m.mu.Unlock()
	m.invoke(msg, true)
	m.release()
}

// release ends an inline turn: if messages are waiting, a new goroutine
// takes them; otherwise the mailbox goes idle.
func (m *fairMailbox) release() {
	m.mu.Lock()
	if m.system.len() == 0 && (m.suspended || m.user.len() == 0) {
		m.running = false
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	go m.drain()
}

// drain processes messages until none is left.
func (m *fairMailbox) drain() {
	for {
		m.mu.Lock()
		var msg any
		system := false
		switch {
		case m.system.len() > 0:
			msg, system = m.system.pop(), true
		case !m.suspended && m.user.len() > 0:
			msg = m.user.pop()
		default:
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		m.invoke(msg, system)
	}
}

func (m *fairMailbox) invoke(msg any, system bool) {
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()
	if !system {
		m.invoker.InvokeUserMessage(msg)
		return
	}
	switch msg.(type) {
	case *actor.SuspendMailbox:
		m.mu.Lock()
		m.suspended = true
		m.mu.Unlock()
	case *actor.ResumeMailbox:
		m.mu.Lock()
		m.suspended = false
		m.mu.Unlock()
	default:
		m.invoker.InvokeSystemMessage(msg)
	}
}

// RegisterHandlers implements actor.Mailbox. The dispatcher is not used:
// the mailbox decides where it runs.
func (m *fairMailbox) RegisterHandlers(invoker actor.MessageInvoker, _ actor.Dispatcher) {
	m.invoker = invoker
}

// Start implements actor.Mailbox.
func (m *fairMailbox) Start() {}

// UserMessageCount implements actor.Mailbox.
func (m *fairMailbox) UserMessageCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.user.len()
}

// queue is a FIFO of messages on a slice that is reused once drained.
type queue struct {
	items []any
	head  int
}

func (q *queue) len() int { return len(q.items) - q.head }

func (q *queue) push(v any) { q.items = append(q.items, v) }

func (q *queue) pop() any {
	v := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v
}
