package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// fairMailbox is the mailbox of session actors. A sender that finds the
// actor idle processes its own operation on its own goroutine when that
// operation cannot block: any operation of a kind whose storage never
// blocks (Memory), and a read that the actor has declared free of I/O (its
// session loaded, nothing to refresh: see entry.inlineUntil). That costs no
// goroutine start and no hand-off (the point of protoactor's synchronized
// dispatcher); but the sender processes only its own operation. Messages
// that arrived meanwhile are handed to a fresh goroutine, so a caller never
// works for other callers: under a hot session, no request is held hostage
// draining a mailbox that others keep filling (the synchronized
// dispatcher's trap).
//
// Everything that may block runs on a goroutine of the mailbox's own, never
// on the sender's: so that a caller can leave at its deadline while the
// storage is slow, and so that the janitor, an evicting caller or Close
// never waits for one session's flush (passivations run inline only for a
// storage that never blocks).
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

	inline  bool             // every operation may run on its sender; never changes
	e       *entry           // the actor's entry, for its inlineUntil
	now     func() time.Time // the System's clock
	invoker actor.MessageInvoker
}

// PostUserMessage implements actor.Mailbox.
func (m *fairMailbox) PostUserMessage(msg any) {
	m.mu.Lock()
	if m.running || m.suspended || !m.mayRunInline(msg) {
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

// mayRunInline reports whether msg, found the actor idle, cannot block.
func (m *fairMailbox) mayRunInline(msg any) bool {
	op, ok := msg.(*Op)
	switch {
	case !ok: // a passivation: its flush blocks unless the storage never does
		return m.inline
	case m.inline:
		return true
	case op.Code != OpGet || m.e == nil:
		return false
	}
	until := m.e.inlineUntil.Load()
	if until == 0 {
		return false
	}
	now := m.now().UnixNano()
	if now >= until {
		return false
	}
	op.now = now // the actor judges the read at the instant checked here
	return true
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

// release ends an inline turn. System messages the turn caused (the
// actor stopping itself) are handled here, since they never block, so an
// actor that stops after an inline operation is gone when its caller
// returns; if user messages are waiting, a new goroutine takes them;
// otherwise the mailbox goes idle.
func (m *fairMailbox) release() {
	for {
		m.mu.Lock()
		if m.system.len() > 0 {
			msg := m.system.pop()
			m.mu.Unlock()
			m.invoke(msg, true)
			continue
		}
		if m.suspended || m.user.len() == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		go m.drain()
		return
	}
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

// takeUpdates appends to ops the update operations waiting at the head of
// the user queue, in order, until ops holds max or the head is anything
// else: the actor applies them with one storage write (group commit).
func (m *fairMailbox) takeUpdates(ops []*Op, max int) []*Op {
	return m.take(ops, max, OpUpdate)
}

// take appends to ops the operations of code waiting at the head of the
// user queue, in order, until ops holds max or the head is anything else.
func (m *fairMailbox) take(ops []*Op, max int, code OpCode) []*Op {
	m.mu.Lock()
	for len(ops) < max && !m.suspended && m.user.len() > 0 {
		op, ok := m.user.peek().(*Op)
		if !ok || op.Code != code {
			break
		}
		m.user.pop()
		ops = append(ops, op)
	}
	m.mu.Unlock()
	return ops
}

// queue is a FIFO of messages on a slice that is reused once drained.
type queue struct {
	items []any
	head  int
}

func (q *queue) len() int { return len(q.items) - q.head }

func (q *queue) push(v any) { q.items = append(q.items, v) }

func (q *queue) peek() any { return q.items[q.head] }

func (q *queue) pop() any {
	v := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return v
}
