// SPDX-License-Identifier: GPL-2.0
/*
 * gm_link: the gridmeter meter-to-meter link layer, as a tty line
 * discipline (Documentation/link-ldisc.md).
 *
 * Every tty carrying this discipline is a link of a node: the uplink
 * (towards the town server, through the modem) or a neighbour link (to a
 * meter of the ring). Frames for this meter are queued for the local agent,
 * which reads and writes them through /dev/gmlink. Frames for anybody else
 * are forwarded in the kernel ("bypass"): towards the town server through
 * the uplink, or the next neighbour when the uplink is down; towards a
 * meter through the link its traffic was last seen on.
 *
 * A kernel normally runs one node (node 0). Tests run up to GM_NODES_MAX
 * nodes in one kernel to build chains and rings over pty pairs.
 *
 * Locking (see also the comment at each lock):
 *  - gm_cfg_mutex serialises link configuration: joining and leaving a
 *    node (node->links[] writers), role and state changes, close.
 *  - node->links[] are RCU pointers. The data path (receive_buf, local
 *    write, poll) looks links up under rcu_read_lock() and may enqueue on a
 *    link it found there; close unpublishes the link, marks it dead,
 *    waits with synchronize_rcu(), then cancels its transmit work.
 *  - tty->disc_data is RCU-protected for write_wakeup(), which drivers may
 *    call from interrupt context at any time; close clears it before
 *    synchronize_rcu(). receive_buf(), ioctl(), hangup() and
 *    flush_buffer() are called with an ldisc reference held by the tty
 *    core, so the link cannot be closed under them.
 *  - link->rx_lock (mutex) serialises receive_buf() with flush_buffer(),
 *    which hangup calls without the flip buffer lock.
 *  - node->lock (spinlock) protects a node's meter id writes, route table,
 *    duplicate filter, local receive queue and counters; a link's slot is
 *    written under it too, so a route is never learnt for a link that has
 *    left the node.
 *  - node->clients_lock (spinlock) protects the list of /dev/gmlink files
 *    bound to the node, whose own wait queues poll() waits on.
 *  - link->tx_lock (spinlock) protects a link's transmit ring and its dead
 *    flag. It is never taken with node->lock held, nor the reverse.
 *  - The transmit work is the only writer to the tty; write_wakeup()
 *    never writes, it only schedules the work.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/tty.h>
#include <linux/tty_ldisc.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <gridmeter/link_test.h>

#include "../gm_kcompat.h"
#include "gm_frame.h"

static int ldisc_num = N_DEVELOPMENT;
module_param(ldisc_num, int, 0444);
MODULE_PARM_DESC(ldisc_num, "line discipline number: 29 (N_DEVELOPMENT), or one above the kernel's own (N_CAN327)");

static unsigned int txqlen = 32;
module_param(txqlen, uint, 0444);
MODULE_PARM_DESC(txqlen, "frames local writers may queue on a link (2..1024)");

/*
 * Forwarded frames may fill a link's ring up to GM_FWD_FACTOR * txqlen
 * (local writers only txqlen of it): the slack absorbs bursts from the
 * neighbours, and what still does not fit is dropped and counted
 * (fwd_queue_full), as a network interface drops on a full queue.
 */
#define GM_FWD_FACTOR		4
#define gm_ring_len()		(txqlen * GM_FWD_FACTOR)

static unsigned int rxqlen = 64;
module_param(rxqlen, uint, 0644);
MODULE_PARM_DESC(rxqlen, "frames waiting for the local agent per node");

static unsigned int hop_default = GM_HOP_DEFAULT;
module_param(hop_default, uint, 0644);
MODULE_PARM_DESC(hop_default, "hop limit of local frames written with 0 (1..15)");

#define GM_ROUTES		256	/* learnt routes per node */
#define GM_DEDUP		256	/* sources tracked for duplicates per node */
#define GM_PROBE		8	/* open addressing probe length */
#define GM_DEDUP_WINDOW		64
#define GM_DEDUP_TTL		(30 * HZ)
#define GM_ROUTE_TTL		(600 * HZ)
#define GM_TX_RETRY		msecs_to_jiffies(10)
/* a frame to forward waits this long for egress room, polled every tick */
#define GM_FWD_WAIT		HZ
#define GM_FWD_POLL		msecs_to_jiffies(10)

/* Link counters, in the order of struct gm_link_stats. */
enum {
	S_RX_BYTES, S_RX_FRAMES, S_RX_LOCAL, S_FWD_IN, S_RX_DROPPED,
	S_DUPLICATES, S_HOP_EXCEEDED, S_NO_ROUTE, S_LOCAL_OVERFLOWS,
	S_FWD_QUEUE_FULL, S_CRC, S_FRAMING, S_OVERSIZE, S_TTY_ERRORS,
	S_TX_FRAMES, S_TX_BYTES, S_FWD_OUT, S_TXQ_OVERFLOWS, S_TX_FLUSHED,
	S_NUM
};

struct gm_route {
	unsigned long stamp;
	u32 link_id;
	u16 id;
	u8 slot;
	bool valid;
};

struct gm_dedup {
	unsigned long stamp;
	u64 window;		/* bit i: last - i was seen */
	u16 src;
	u16 last;
	bool valid;
};

struct gm_rxmsg {
	struct list_head list;
	struct gm_msg_hdr hdr;
	u8 payload[];
};

struct gm_link;

struct gm_node {
	/*
	 * lock protects meter_id updates, routes[], dedup[], rxq, rxq_len and
	 * the stats below. Taken from process context only (receive_buf runs
	 * in the flip buffer work, local I/O in syscalls), never nested with
	 * a link's tx_lock.
	 */
	spinlock_t lock;
	u16 meter_id;		/* GM_ID_INVALID until set; READ_ONCE to read */
	atomic_t seq;		/* next sequence number of local frames */
	atomic_t tx_gen;	/* bumped whenever a writer may make progress */
	/* links[] written under gm_cfg_mutex, read under RCU */
	struct gm_link __rcu *links[GM_LINKS_MAX];
	struct gm_route routes[GM_ROUTES];
	struct gm_dedup dedup[GM_DEDUP];
	struct list_head rxq;
	unsigned int rxq_len;
	/* blocking read()/write() on /dev/gmlink sleep on the node */
	wait_queue_head_t rx_wait;
	wait_queue_head_t tx_wait;
	/*
	 * poll() sleeps on the file's own wait queue, so that a rebound
	 * file's epoll entries stay valid: clients (struct gm_client) bound
	 * to this node, protected by clients_lock, are woken with the node.
	 */
	spinlock_t clients_lock;
	struct list_head clients;
	struct gm_node_stats stats;
};

struct gm_txslot {
	u16 len;
	u8 data[GM_MAX_WIRE];
};

struct gm_link {
	struct tty_struct *tty;
	u32 id;			/* unique, so routes never outlive a link */
	/* node, slot, role and up: written under gm_cfg_mutex, READ_ONCE */
	struct gm_node *node;
	int slot;		/* index in node->links[], -1 if not joined;
				 * also written under node->lock
				 */
	u32 role;
	bool up;
	/*
	 * tx_lock protects dead, head, count and the free ring slots.
	 * Producers only fill the slot at head + count; the slot at head
	 * belongs to the transmit work, which writes it out without the
	 * lock and frees it by advancing head under the lock.
	 */
	spinlock_t tx_lock;
	bool dead;
	unsigned int head;
	unsigned int count;
	struct gm_txslot *ring;
	/* owned by the transmit work */
	struct delayed_work tx_work;
	unsigned int tx_off;
	/*
	 * rx_lock serialises receive_buf() and flush_buffer(): the tty core
	 * calls flush_buffer() from hangup without the flip buffer lock. It
	 * protects the decoder.
	 */
	struct mutex rx_lock;
	struct gm_rx rx;
	bool fwd_blocked;	/* rx_lock: the last wait for egress room failed */
	atomic64_t stats[S_NUM];
};

static struct gm_node gm_nodes[GM_NODES_MAX];
/* serialises link configuration: node->links[] writers, role/up, close */
static DEFINE_MUTEX(gm_cfg_mutex);
static atomic_t gm_link_ids = ATOMIC_INIT(0);

/*
 * tty->disc_data is a plain pointer in struct tty_struct; view it as the
 * RCU pointer it is for this discipline, so sparse checks our accesses.
 */
static struct gm_link __rcu **gm_disc(struct tty_struct *tty)
{
	return (struct gm_link __rcu __force **)&tty->disc_data;
}

static void gm_stat(struct gm_link *l, int idx, u64 n)
{
	atomic64_add(n, &l->stats[idx]);
}

static void gm_drop(struct gm_link *l, int reason)
{
	gm_stat(l, reason, 1);
	gm_stat(l, S_RX_DROPPED, 1);
}

struct gm_client {
	struct gm_node *node;	/* READ_ONCE: rebound by GM_IOC_BIND_NODE */
	struct list_head node_list;	/* in node->clients */
	wait_queue_head_t poll_wait;
};

/* Wake poll()/epoll waiters of every file bound to @n. */
static void gm_node_wake_pollers(struct gm_node *n)
{
	struct gm_client *c;

	spin_lock(&n->clients_lock);
	list_for_each_entry(c, &n->clients, node_list)
		wake_up_interruptible(&c->poll_wait);
	spin_unlock(&n->clients_lock);
}

static void gm_node_kick_writers(struct gm_node *n)
{
	atomic_inc(&n->tx_gen);
	wake_up_interruptible(&n->tx_wait);
	gm_node_wake_pollers(n);
}

/* ---- routes and duplicate filter (node->lock held) ---------------------- */

static unsigned int gm_hash(u16 id)
{
	return (id * 0x9e37u) >> 8;
}

static struct gm_route *gm_route_find(struct gm_node *n, u16 id, bool create)
{
	struct gm_route *victim = NULL;
	unsigned int i, h = gm_hash(id);

	for (i = 0; i < GM_PROBE; i++) {
		struct gm_route *r = &n->routes[(h + i) % GM_ROUTES];

		if (r->valid && r->id == id)
			return r;
		if (!create)
			continue;
		if (!r->valid) {
			if (!victim || victim->valid)
				victim = r;
		} else if (!victim || (victim->valid &&
					time_before(r->stamp, victim->stamp))) {
			victim = r;
		}
	}
	if (victim) {
		if (!victim->valid)
			n->stats.routes++;
		victim->valid = true;
		victim->id = id;
	}
	return victim;
}

static void gm_route_learn(struct gm_node *n, u16 id, struct gm_link *l)
{
	int slot = l->slot;	/* stable: written under n->lock */
	struct gm_route *r;

	lockdep_assert_held(&n->lock);
	/*
	 * Left this node (its routes were purged under this lock, or will
	 * be) or moved to another node since the frame was received: a
	 * route learnt now would outlive the link here.
	 */
	if (slot < 0 || rcu_access_pointer(n->links[slot]) != l)
		return;
	r = gm_route_find(n, id, true);
	r->slot = (u8)slot;
	r->link_id = l->id;
	r->stamp = jiffies;
}

/*
 * Return true if (src, seq) was seen recently. With @record, a frame not
 * seen is recorded as seen; without, nothing changes. Only frames the
 * node accepts are recorded: a frame it drops (no route, full queue) is
 * not, so a retransmission of it with the same (src, seq) gets through.
 */
static bool gm_dedup_seen(struct gm_node *n, u16 src, u16 seq, bool record)
{
	struct gm_dedup *d, *victim = NULL;
	unsigned int i, h = gm_hash(src);
	s16 diff;

	lockdep_assert_held(&n->lock);

	for (i = 0; i < GM_PROBE; i++) {
		d = &n->dedup[(h + i) % GM_DEDUP];
		if (d->valid && d->src == src)
			goto found;
		if (!d->valid) {
			if (!victim || victim->valid)
				victim = d;
		} else if (!victim || (victim->valid &&
					time_before(d->stamp, victim->stamp))) {
			victim = d;
		}
	}
	d = victim;
	goto reset;

found:
	if (time_after(jiffies, d->stamp + GM_DEDUP_TTL))
		goto reset;
	diff = (s16)(seq - d->last);
	if (diff <= 0 && -diff < GM_DEDUP_WINDOW &&
	    (d->window & (1ULL << -diff))) {
		d->stamp = jiffies;
		return true;
	}
	if (!record)
		return false;
	d->stamp = jiffies;
	if (diff > 0) {
		d->window = diff >= GM_DEDUP_WINDOW ? 0 : d->window << diff;
		d->window |= 1;
		d->last = seq;
		return false;
	}
	if (-diff < GM_DEDUP_WINDOW) {
		d->window |= 1ULL << -diff;
		return false;
	}
	/* far behind: the source restarted its sequence */
reset:
	if (!record)
		return false;
	d->valid = true;
	d->src = src;
	d->last = seq;
	d->window = 1;
	d->stamp = jiffies;
	return false;
}

/*
 * Forget (src, seq), recorded when a frame to forward was accepted, once
 * that frame is dropped after all (no egress queue space, no route any
 * more): a retransmission of it must not be taken for a duplicate.
 */
static void gm_dedup_forget(struct gm_node *n, u16 src, u16 seq)
{
	unsigned int i, h = gm_hash(src);
	struct gm_dedup *d;
	s16 diff;

	lockdep_assert_held(&n->lock);
	for (i = 0; i < GM_PROBE; i++) {
		d = &n->dedup[(h + i) % GM_DEDUP];
		if (!d->valid || d->src != src)
			continue;
		diff = (s16)(seq - d->last);
		if (diff <= 0 && -diff < GM_DEDUP_WINDOW)
			d->window &= ~(1ULL << -diff);
		return;
	}
}

/* ---- transmit ----------------------------------------------------------- */

static struct gm_link *gm_usable(struct gm_node *n, unsigned int slot)
{
	struct gm_link *l = rcu_dereference(n->links[slot]);

	if (l && READ_ONCE(l->up) && READ_ONCE(l->role) != GM_ROLE_NONE)
		return l;
	return NULL;
}

/*
 * Choose the link a frame for @dst leaves on; @in is the link it arrived
 * on (NULL for local frames). Caller holds rcu_read_lock().
 */
static struct gm_link *gm_egress(struct gm_node *n, u16 dst, struct gm_link *in)
{
	struct gm_link *l;
	unsigned int i, start;

	if (dst != GM_ID_SERVER) {
		struct gm_route *r;
		u32 link_id = 0;
		int slot = -1;

		spin_lock(&n->lock);
		r = gm_route_find(n, dst, false);
		if (r && time_before(jiffies, r->stamp + GM_ROUTE_TTL)) {
			slot = r->slot;
			link_id = r->link_id;
		}
		spin_unlock(&n->lock);
		if (slot >= 0 && slot < GM_LINKS_MAX) {
			l = gm_usable(n, slot);
			if (l && l->id == link_id && l != in)
				return l;
		}
		/* a meter we know no route to, heard from the server: drop */
		if (in && READ_ONCE(in->role) == GM_ROLE_UPLINK)
			return NULL;
	}
	for (i = 0; i < GM_LINKS_MAX; i++) {
		l = gm_usable(n, i);
		if (l && l != in && READ_ONCE(l->role) == GM_ROLE_UPLINK)
			return l;
	}
	/* cut off: onward to the next neighbour after the one it came from */
	start = in ? READ_ONCE(in->slot) + 1 : 0;
	for (i = 0; i < GM_LINKS_MAX; i++) {
		l = gm_usable(n, (start + i) % GM_LINKS_MAX);
		if (l && l != in && READ_ONCE(l->role) == GM_ROLE_NEIGHBOUR)
			return l;
	}
	return NULL;
}

/*
 * Encode a frame into @l's transmit ring if fewer than @limit frames are
 * queued. With @assign_seq the sequence number is taken from the node only
 * once the frame is sure to be queued, so local frames leave each link in
 * sequence order.
 * Return: 0, -ENOBUFS if the ring is full (the caller counts the overflow
 * if it gives the frame up), -ENOLINK if the link is closing.
 * Caller holds rcu_read_lock() (keeps @l alive until the work is queued).
 */
static int gm_enqueue(struct gm_link *l, struct gm_hdr *h, const void *payload,
		      size_t len, unsigned int limit, bool assign_seq)
{
	struct gm_txslot *s;
	int ret = 0;

	spin_lock(&l->tx_lock);
	if (l->dead) {
		ret = -ENOLINK;
	} else if (l->count >= limit) {
		ret = -ENOBUFS;
	} else {
		s = &l->ring[(l->head + l->count) % gm_ring_len()];
		if (assign_seq)
			h->seq = (u16)atomic_inc_return(&l->node->seq);
		ret = gm_frame_encode(h, payload, len, s->data, sizeof(s->data));
		if (ret > 0) {
			s->len = ret;
			l->count++;
			ret = 0;
		}
	}
	spin_unlock(&l->tx_lock);
	if (!ret)
		mod_delayed_work(system_wq, &l->tx_work, 0);
	return ret;
}

static void gm_tx_work(struct work_struct *work)
{
	struct gm_link *l = container_of(to_delayed_work(work), struct gm_link,
					 tx_work);
	struct tty_struct *tty = l->tty;
	struct gm_node *n = READ_ONCE(l->node);

	for (;;) {
		struct gm_txslot *s;
		int w;

		spin_lock(&l->tx_lock);
		if (l->dead || !l->count) {
			spin_unlock(&l->tx_lock);
			clear_bit(TTY_DO_WRITE_WAKEUP, &tty->flags);
			return;
		}
		s = &l->ring[l->head];
		spin_unlock(&l->tx_lock);

		/* ask for a wakeup before writing, so none is missed */
		set_bit(TTY_DO_WRITE_WAKEUP, &tty->flags);
		w = tty->ops->write(tty, s->data + l->tx_off, s->len - l->tx_off);
		if (w > 0) {
			l->tx_off += w;
			gm_stat(l, S_TX_BYTES, w);
		}
		if (l->tx_off < s->len) {
			/* write_wakeup reschedules us; retry anyway in case
			 * the driver never calls it (pty peers that do not
			 * throttle). queue, not mod: a wakeup that came in
			 * meanwhile must not be postponed.
			 */
			queue_delayed_work(system_wq, &l->tx_work, GM_TX_RETRY);
			return;
		}
		l->tx_off = 0;
		spin_lock(&l->tx_lock);
		l->head = (l->head + 1) % gm_ring_len();
		l->count--;
		spin_unlock(&l->tx_lock);
		gm_stat(l, S_TX_FRAMES, 1);
		gm_node_kick_writers(n);
		/* up to 4 * txqlen frames per run on a fast driver */
		cond_resched();
	}
}

/* ---- receive ------------------------------------------------------------ */

/*
 * Forward the frame just decoded (header @h, payload still in l->rx), or
 * drop it, counted: no route, or no room in the egress ring. A dropped
 * frame is forgotten by the duplicate filter, which recorded it when it was
 * accepted, so that a retransmission of it gets through.
 */
static int gm_rx_forward_once(struct gm_link *l, struct gm_hdr *h, bool last)
{
	struct gm_node *n = READ_ONCE(l->node);
	struct gm_link *out;
	int ret;

	rcu_read_lock();
	out = gm_egress(n, h->dst, l);
	if (!out) {
		ret = -ENOLINK;
	} else {
		ret = gm_enqueue(out, h, l->rx.payload, l->rx.payload_len,
				 gm_ring_len(), false);
		if (!ret)
			gm_stat(out, S_FWD_OUT, 1);
		else if (ret == -ENOBUFS && last)
			gm_stat(out, S_TXQ_OVERFLOWS, 1);
	}
	rcu_read_unlock();
	return ret;
}

/* The receiving tty is going away or changing discipline: do not wait. */
static bool gm_rx_must_go_on(struct gm_link *l)
{
	return !READ_ONCE(l->up) || test_bit(TTY_HUPPING, &l->tty->flags) ||
	       test_bit(TTY_LDISC_CHANGING, &l->tty->flags);
}

static void gm_rx_forward(struct gm_link *l, struct gm_hdr *h)
{
	struct gm_node *n = READ_ONCE(l->node);
	unsigned long until = jiffies + GM_FWD_WAIT;
	int ret;

	/*
	 * No room on the egress link: wait for it here, in the flip buffer
	 * work, for up to GM_FWD_WAIT. Meanwhile the driver's bytes stay in
	 * the flip buffer, which holds the neighbour back (a pty writer
	 * blocks; a UART's FIFO and RTS take over). After one wait in vain
	 * the link drops (and counts) what it cannot forward, without
	 * waiting, until a frame gets through again.
	 */
	for (;;) {
		bool last = l->fwd_blocked || time_after(jiffies, until) ||
			    gm_rx_must_go_on(l);

		ret = gm_rx_forward_once(l, h, last);
		if (ret != -ENOBUFS || last)
			break;
		wait_event_interruptible_timeout(n->tx_wait, gm_rx_must_go_on(l),
						 GM_FWD_POLL);
	}
	l->fwd_blocked = ret == -ENOBUFS;

	if (!ret) {
		gm_stat(l, S_FWD_IN, 1);
		return;
	}
	spin_lock(&n->lock);
	gm_dedup_forget(n, h->src, h->seq);
	spin_unlock(&n->lock);
	gm_drop(l, ret == -ENOBUFS ? S_FWD_QUEUE_FULL : S_NO_ROUTE);
}

/*
 * Handle the frame just decoded into l->rx: deliver it locally, forward it
 * or drop it (counted).
 */
static void gm_rx_frame(struct gm_link *l)
{
	struct gm_node *n = READ_ONCE(l->node);
	u16 me = READ_ONCE(n->meter_id);
	u32 role = READ_ONCE(l->role);
	const struct gm_hdr *h = &l->rx.hdr;
	size_t len = l->rx.payload_len;
	struct gm_rxmsg *m = NULL;
	struct gm_hdr fwd;
	int reason = -1;
	bool local;

	gm_stat(l, S_RX_FRAMES, 1);
	if (role == GM_ROLE_NONE || !READ_ONCE(l->up) || READ_ONCE(l->slot) < 0) {
		gm_drop(l, S_NO_ROUTE);
		return;
	}
	local = me != GM_ID_INVALID && h->dst == me;
	if (local) {
		/* process context (flip buffer work), no spinlock held */
		m = kmalloc(struct_size(m, payload, len), GFP_KERNEL);
		if (m) {
			m->hdr = (struct gm_msg_hdr) {
				.version = h->version, .type = h->type,
				.flags = h->flags, .hop_limit = h->hop_limit,
				.src = h->src, .dst = h->dst, .seq = h->seq,
				.len = (u16)len,
			};
			memcpy(m->payload, l->rx.payload, len);
		}
	}

	spin_lock(&n->lock);
	if (h->src == me || gm_dedup_seen(n, h->src, h->seq, false)) {
		reason = S_DUPLICATES;
		goto unlock;
	}
	/* replies to the source go back where it was heard from */
	if (role == GM_ROLE_NEIGHBOUR && h->src != GM_ID_SERVER)
		gm_route_learn(n, h->src, l);
	/*
	 * (src, seq) is recorded only for a frame this node accepts: queued
	 * for the agent, or about to be forwarded. A frame to forward is
	 * recorded now, under the lock, so that a copy arriving meanwhile on
	 * another link is not forwarded too; gm_rx_fwd_drop() forgets it if
	 * it is dropped after all.
	 */
	if (local) {
		if (!m || n->rxq_len >= rxqlen) {
			n->stats.local_overflows++;
			reason = S_LOCAL_OVERFLOWS;
		} else {
			list_add_tail(&m->list, &n->rxq);
			n->rxq_len++;
			m = NULL;
			gm_dedup_seen(n, h->src, h->seq, true);
		}
	} else if (h->hop_limit == 0) {
		reason = S_HOP_EXCEEDED;
	} else {
		gm_dedup_seen(n, h->src, h->seq, true);
	}
unlock:
	spin_unlock(&n->lock);
	kfree(m);

	if (reason >= 0) {
		gm_drop(l, reason);
		return;
	}
	if (local) {
		gm_stat(l, S_RX_LOCAL, 1);
		wake_up_interruptible(&n->rx_wait);
		gm_node_wake_pollers(n);
		return;
	}
	/* bypass: forwarded payload never reaches a local reader */
	fwd = *h;
	fwd.hop_limit--;
	gm_rx_forward(l, &fwd);
}

/* Feed received bytes to the decoder, handling every frame they complete. */
static void gm_rx_bytes(struct gm_link *l, const u8 *cp, size_t count)
{
	size_t done = 0;

	while (done < count) {
		enum gm_rx_status st;

		size_t used = gm_rx_feed(&l->rx, cp + done, count - done, &st);

		/* before the frame is handled, so readers see consistent stats */
		gm_stat(l, S_RX_BYTES, used);
		done += used;
		switch (st) {
		case GM_RX_FRAME:
			gm_rx_frame(l);
			break;
		case GM_RX_ERR_FRAMING:
			gm_stat(l, S_FRAMING, 1);
			break;
		case GM_RX_ERR_CRC:
			gm_stat(l, S_CRC, 1);
			break;
		case GM_RX_ERR_OVERSIZE:
			gm_stat(l, S_OVERSIZE, 1);
			break;
		case GM_RX_NONE:
			break;
		}
	}
}

/* ---- link configuration (gm_cfg_mutex held) ------------------------------ */

static void gm_link_leave(struct gm_link *l)
{
	struct gm_node *n = l->node;
	unsigned int i;

	lockdep_assert_held(&gm_cfg_mutex);
	if (l->slot < 0)
		return;
	RCU_INIT_POINTER(n->links[l->slot], NULL);
	spin_lock(&n->lock);
	/* with the purge: gm_route_learn() sees -1 from now on */
	WRITE_ONCE(l->slot, -1);
	for (i = 0; i < GM_ROUTES; i++) {
		struct gm_route *r = &n->routes[i];

		if (r->valid && r->link_id == l->id) {
			r->valid = false;
			n->stats.routes--;
		}
	}
	n->stats.links--;
	spin_unlock(&n->lock);
	gm_node_kick_writers(n);
}

static int gm_link_join(struct gm_link *l, struct gm_node *n)
{
	unsigned int i;

	lockdep_assert_held(&gm_cfg_mutex);
	for (i = 0; i < GM_LINKS_MAX; i++) {
		if (!rcu_access_pointer(n->links[i]))
			break;
	}
	if (i == GM_LINKS_MAX)
		return -ENOSPC;
	WRITE_ONCE(l->node, n);
	rcu_assign_pointer(n->links[i], l);
	spin_lock(&n->lock);
	WRITE_ONCE(l->slot, i);
	n->stats.links++;
	spin_unlock(&n->lock);
	gm_node_kick_writers(n);
	return 0;
}

static int gm_link_configure(struct gm_link *l, const struct gm_link_conf *c)
{
	struct gm_node *n;
	int ret = 0;

	if (c->node >= GM_NODES_MAX || c->role > GM_ROLE_NEIGHBOUR || c->up > 1)
		return -EINVAL;
	n = &gm_nodes[c->node];
	mutex_lock(&gm_cfg_mutex);
	if (l->node != n || l->slot < 0) {
		struct gm_node *old = l->node;

		gm_link_leave(l);
		ret = gm_link_join(l, n);
		if (ret) {
			if (gm_link_join(l, old))
				WRITE_ONCE(l->node, old);
			goto out;
		}
	}
	WRITE_ONCE(l->role, c->role);
	WRITE_ONCE(l->up, c->up);
	gm_node_kick_writers(n);
out:
	mutex_unlock(&gm_cfg_mutex);
	return ret;
}

static int gm_set_meter_id(struct gm_node *n, u32 __user *arg)
{
	u32 id;

	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	if (get_user(id, arg))
		return -EFAULT;
	if (id == GM_ID_SERVER || id >= GM_ID_INVALID)
		return -EINVAL;
	spin_lock(&n->lock);
	WRITE_ONCE(n->meter_id, (u16)id);
	spin_unlock(&n->lock);
	gm_node_kick_writers(n);
	return 0;
}

/* ---- line discipline ---------------------------------------------------- */

static int gm_ldisc_open(struct tty_struct *tty)
{
	struct gm_link *l;
	unsigned int i;

	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	if (!tty->ops->write)
		return -EOPNOTSUPP;

	l = kzalloc(sizeof(*l), GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	l->ring = kvcalloc(gm_ring_len(), sizeof(*l->ring), GFP_KERNEL);
	if (!l->ring) {
		kfree(l);
		return -ENOMEM;
	}
	l->tty = tty;
	l->id = (u32)atomic_inc_return(&gm_link_ids);
	l->node = &gm_nodes[0];
	l->slot = -1;
	l->role = GM_ROLE_NONE;
	spin_lock_init(&l->tx_lock);
	INIT_DELAYED_WORK(&l->tx_work, gm_tx_work);
	mutex_init(&l->rx_lock);
	gm_rx_init(&l->rx);
	for (i = 0; i < S_NUM; i++)
		atomic64_set(&l->stats[i], 0);

	/* receive_buf() takes whatever the driver has: it never stalls */
	tty->receive_room = 65536;
	rcu_assign_pointer(*gm_disc(tty), l);
	return 0;
}

static void gm_ldisc_close(struct tty_struct *tty)
{
	struct gm_link *l = tty->disc_data;
	struct gm_node *n;
	unsigned int flushed;

	if (!l)
		return;
	mutex_lock(&gm_cfg_mutex);
	gm_link_leave(l);
	n = l->node;
	mutex_unlock(&gm_cfg_mutex);

	spin_lock(&l->tx_lock);
	l->dead = true;
	spin_unlock(&l->tx_lock);
	rcu_assign_pointer(*gm_disc(tty), NULL);
	/* no data path and no write_wakeup can still see the link ... */
	synchronize_rcu();
	/* ... so nothing can queue the transmit work again */
	cancel_delayed_work_sync(&l->tx_work);
	clear_bit(TTY_DO_WRITE_WAKEUP, &tty->flags);

	/*
	 * Frames still queued (hangup and ldisc changes end here too) are
	 * counted in the node, which outlives the link; the link's own
	 * tx_flushed would be freed with it just below.
	 */
	flushed = l->count;
	spin_lock(&n->lock);
	n->stats.closed_tx_flushed += flushed;
	spin_unlock(&n->lock);
	gm_node_kick_writers(n);

	kvfree(l->ring);
	kfree(l);
}

static void gm_ldisc_hangup(struct tty_struct *tty)
{
	struct gm_link *l = tty->disc_data;

	/*
	 * Out of routing at once; close (which follows) frees the link and
	 * counts its queued frames in the node's closed_tx_flushed.
	 */
	if (l) {
		WRITE_ONCE(l->up, false);
		gm_node_kick_writers(READ_ONCE(l->node));
	}
}

static void gm_ldisc_flush_buffer(struct tty_struct *tty)
{
	struct gm_link *l = tty->disc_data;

	if (!l)
		return;
	mutex_lock(&l->rx_lock);
	/*
	 * Input flush (TCIFLUSH, hangup): a partly received frame is lost.
	 * The transmit ring is not touched.
	 */
	if (l->rx.len || l->rx.bad)
		gm_stat(l, S_FRAMING, 1);
	gm_rx_init(&l->rx);
	mutex_unlock(&l->rx_lock);
}

/*
 * Everything the driver hands over is consumed (receive_room is never
 * reduced): frames to forward that find no room are dropped and counted.
 * tty_unthrottle() then tells the driver it may send again, which for a
 * pty wakes a writer waiting for room in our flip buffer.
 */
static void gm_ldisc_receive_buf(struct tty_struct *tty, const u8 *cp,
				 const gm_tty_flag_t *fp, gm_tty_count_t count)
{
	struct gm_link *l = tty->disc_data;
	gm_tty_count_t done = 0;

	if (!l || count <= 0)
		return;

	mutex_lock(&l->rx_lock);
	while (done < count) {
		gm_tty_count_t run = 1;

		/* a flagged byte spoils its frame, but may still delimit it */
		if (fp && fp[done] != TTY_NORMAL) {
			gm_stat(l, S_TTY_ERRORS, 1);
			gm_rx_mark_bad(&l->rx);
		} else if (fp) {
			while (done + run < count && fp[done + run] == TTY_NORMAL)
				run++;
		} else {
			run = count - done;
		}
		gm_rx_bytes(l, cp + done, run);
		done += run;
	}
	mutex_unlock(&l->rx_lock);
	tty_unthrottle(tty);
}

static void gm_ldisc_write_wakeup(struct tty_struct *tty)
{
	struct gm_link *l;

	/* any context, even hard IRQ: never write here, kick the work */
	rcu_read_lock();
	l = rcu_dereference(*gm_disc(tty));
	if (l)
		mod_delayed_work(system_wq, &l->tx_work, 0);
	rcu_read_unlock();
}

static void gm_link_get_stats(struct gm_link *l, struct gm_link_stats *st)
{
	u64 *v = (u64 *)st;
	unsigned int i;

	BUILD_BUG_ON(sizeof(*st) != S_NUM * sizeof(u64));
	for (i = 0; i < S_NUM; i++)
		v[i] = atomic64_read(&l->stats[i]);
}

static int gm_ldisc_ioctl(struct tty_struct *tty, unsigned int cmd,
			  unsigned long arg)
{
	struct gm_link *l = tty->disc_data;
	void __user *argp = (void __user *)arg;
	struct gm_link_stats st;
	struct gm_link_conf c;

	if (!l)
		return -ENODEV;
	switch (cmd) {
	case GM_IOC_SET_LINK:
		if (!capable(CAP_NET_ADMIN))
			return -EPERM;
		if (copy_from_user(&c, argp, sizeof(c)))
			return -EFAULT;
		return gm_link_configure(l, &c);
	case GM_IOC_GET_LINK:
		mutex_lock(&gm_cfg_mutex);
		c.node = l->node - gm_nodes;
		c.role = l->role;
		c.up = l->up;
		c.slot = l->slot;
		mutex_unlock(&gm_cfg_mutex);
		return copy_to_user(argp, &c, sizeof(c)) ? -EFAULT : 0;
	case GM_IOC_GET_LINK_STATS:
		memset(&st, 0, sizeof(st));
		gm_link_get_stats(l, &st);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	case GM_IOC_SET_METER_ID:
		return gm_set_meter_id(READ_ONCE(l->node), argp);
	case GM_IOC_GET_METER_ID:
		return put_user((u32)READ_ONCE(READ_ONCE(l->node)->meter_id),
				(u32 __user *)argp);
	default:
		return tty_mode_ioctl(tty, cmd, arg);
	}
}

static struct tty_ldisc_ops gm_ldisc = {
	.owner		= THIS_MODULE,
	.name		= "gmlink",
	.open		= gm_ldisc_open,
	.close		= gm_ldisc_close,
	.hangup		= gm_ldisc_hangup,
	.flush_buffer	= gm_ldisc_flush_buffer,
	.ioctl		= gm_ldisc_ioctl,
	.receive_buf	= gm_ldisc_receive_buf,
	.write_wakeup	= gm_ldisc_write_wakeup,
};

/* ---- /dev/gmlink: the local agent ---------------------------------------- */

static void gm_client_add(struct gm_client *c, struct gm_node *n)
{
	spin_lock(&n->clients_lock);
	list_add_tail(&c->node_list, &n->clients);
	spin_unlock(&n->clients_lock);
}

static void gm_client_del(struct gm_client *c, struct gm_node *n)
{
	spin_lock(&n->clients_lock);
	list_del(&c->node_list);
	spin_unlock(&n->clients_lock);
}

static int gm_dev_open(struct inode *inode, struct file *file)
{
	struct gm_client *c = kzalloc(sizeof(*c), GFP_KERNEL);

	if (!c)
		return -ENOMEM;
	init_waitqueue_head(&c->poll_wait);
	c->node = &gm_nodes[0];
	mutex_lock(&gm_cfg_mutex);
	gm_client_add(c, c->node);
	mutex_unlock(&gm_cfg_mutex);
	file->private_data = c;
	return stream_open(inode, file);
}

static int gm_dev_release(struct inode *inode, struct file *file)
{
	struct gm_client *c = file->private_data;

	mutex_lock(&gm_cfg_mutex);
	gm_client_del(c, c->node);
	mutex_unlock(&gm_cfg_mutex);
	kfree(c);
	return 0;
}

/*
 * Bind the file to node @v. poll() and epoll wait on the file's own wait
 * queue, which the bound node wakes, so existing waiters follow the file
 * to its new node; they are woken to look at it at once. A read() or
 * write() already blocked completes on the node it started on.
 */
static int gm_dev_bind(struct gm_client *c, u32 v)
{
	struct gm_node *old, *n;

	if (v >= GM_NODES_MAX)
		return -EINVAL;
	n = &gm_nodes[v];
	mutex_lock(&gm_cfg_mutex);
	old = c->node;
	if (old != n) {
		gm_client_del(c, old);
		WRITE_ONCE(c->node, n);
		gm_client_add(c, n);
	}
	mutex_unlock(&gm_cfg_mutex);
	if (old != n)
		wake_up_interruptible(&c->poll_wait);
	return 0;
}

static ssize_t gm_dev_read(struct file *file, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct gm_client *c = file->private_data;
	struct gm_node *n = READ_ONCE(c->node);
	struct gm_rxmsg *m;
	size_t size;
	int ret;

	for (;;) {
		spin_lock(&n->lock);
		m = list_first_entry_or_null(&n->rxq, struct gm_rxmsg, list);
		if (m) {
			size = sizeof(m->hdr) + m->hdr.len;
			if (count < size) {
				spin_unlock(&n->lock);
				return -EMSGSIZE;
			}
			list_del(&m->list);
			n->rxq_len--;
			n->stats.local_rx++;
		}
		spin_unlock(&n->lock);
		if (m)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(n->rx_wait, READ_ONCE(n->rxq_len));
		if (ret)
			return ret;
	}

	if (copy_to_user(buf, &m->hdr, sizeof(m->hdr)) ||
	    copy_to_user(buf + sizeof(m->hdr), m->payload, m->hdr.len)) {
		/* put it back: a bad buffer must not lose a frame */
		spin_lock(&n->lock);
		list_add(&m->list, &n->rxq);
		n->rxq_len++;
		n->stats.local_rx--;
		spin_unlock(&n->lock);
		return -EFAULT;
	}
	kfree(m);
	return size;
}

static ssize_t gm_dev_write(struct file *file, const char __user *buf,
			    size_t count, loff_t *ppos)
{
	struct gm_client *c = file->private_data;
	struct gm_node *n = READ_ONCE(c->node);
	struct gm_msg_hdr mh;
	struct gm_hdr h;
	u8 *payload;
	int tries = 0;
	ssize_t ret;
	u16 me;

	if (count < sizeof(mh))
		return -EINVAL;
	if (count > GM_MSG_MAX)
		return -EMSGSIZE;
	if (copy_from_user(&mh, buf, sizeof(mh)))
		return -EFAULT;
	if (mh.len != count - sizeof(mh))
		return -EINVAL;
	if ((mh.version && mh.version != GM_VERSION) || !mh.type ||
	    mh.type > GM_TYPE_MAX || mh.flags > GM_FLAG_MASK ||
	    mh.hop_limit > GM_HOP_MAX || mh.dst == GM_ID_INVALID)
		return -EINVAL;
	me = READ_ONCE(n->meter_id);
	if (me == GM_ID_INVALID)
		return -EADDRNOTAVAIL;
	if (mh.dst == me)
		return -EINVAL;

	payload = kmalloc(mh.len ? mh.len : 1, GFP_KERNEL);
	if (!payload)
		return -ENOMEM;
	if (copy_from_user(payload, buf + sizeof(mh), mh.len)) {
		ret = -EFAULT;
		goto out;
	}
	h = (struct gm_hdr) {
		.version = GM_VERSION, .type = mh.type, .flags = mh.flags,
		.hop_limit = mh.hop_limit ? mh.hop_limit :
			     clamp_val(hop_default, 1, GM_HOP_MAX),
		.src = me, .dst = mh.dst,
	};

	for (;;) {
		struct gm_link *l;
		int gen = atomic_read(&n->tx_gen);

		rcu_read_lock();
		l = gm_egress(n, h.dst, NULL);
		ret = l ? gm_enqueue(l, &h, payload, mh.len, txqlen, true) :
			  -ENOLINK;
		if (ret == -ENOBUFS && (file->f_flags & O_NONBLOCK))
			gm_stat(l, S_TXQ_OVERFLOWS, 1);
		rcu_read_unlock();
		if (!ret) {
			ret = count;
			spin_lock(&n->lock);
			n->stats.local_tx++;
			spin_unlock(&n->lock);
			break;
		}
		if (ret == -ENOLINK && l && ++tries < GM_LINKS_MAX)
			continue;	/* it was closing: route again */
		if (ret == -ENOLINK) {
			spin_lock(&n->lock);
			n->stats.local_no_route++;
			spin_unlock(&n->lock);
			break;
		}
		if (file->f_flags & O_NONBLOCK) {
			spin_lock(&n->lock);
			n->stats.local_again++;
			spin_unlock(&n->lock);
			ret = -EAGAIN;
			break;
		}
		ret = wait_event_interruptible(n->tx_wait,
					       atomic_read(&n->tx_gen) != gen);
		if (ret)
			break;
	}
out:
	kfree(payload);
	return ret;
}

static __poll_t gm_dev_poll(struct file *file, poll_table *wait)
{
	struct gm_client *c = file->private_data;
	__poll_t mask = 0;
	struct gm_node *n;
	struct gm_link *l;

	/* the file's queue, woken by its node and by a rebind (gm_dev_bind) */
	poll_wait(file, &c->poll_wait, wait);
	/*
	 * Read after poll_wait(): gm_dev_bind() wakes the queue (under its
	 * lock) after changing the node, so either we see the new node or
	 * the wakeup finds us queued.
	 */
	n = READ_ONCE(c->node);
	if (READ_ONCE(n->rxq_len))
		mask |= EPOLLIN | EPOLLRDNORM;
	/* writable: a write to the server would not block (or fails at once) */
	rcu_read_lock();
	l = gm_egress(n, GM_ID_SERVER, NULL);
	if (!l || READ_ONCE(l->count) < txqlen)
		mask |= EPOLLOUT | EPOLLWRNORM;
	rcu_read_unlock();
	return mask;
}

static long gm_dev_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct gm_client *c = file->private_data;
	struct gm_node *n = READ_ONCE(c->node);
	void __user *argp = (void __user *)arg;
	struct gm_node_stats st;
	u32 v;

	switch (cmd) {
	case GM_IOC_BIND_NODE:
		if (!capable(CAP_NET_ADMIN))
			return -EPERM;
		if (get_user(v, (u32 __user *)argp))
			return -EFAULT;
		return gm_dev_bind(c, v);
	case GM_IOC_SET_METER_ID:
		return gm_set_meter_id(n, argp);
	case GM_IOC_GET_METER_ID:
		return put_user((u32)READ_ONCE(n->meter_id), (u32 __user *)argp);
	case GM_IOC_GET_NODE_STATS:
		spin_lock(&n->lock);
		st = n->stats;
		spin_unlock(&n->lock);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations gm_dev_fops = {
	.owner		= THIS_MODULE,
	.open		= gm_dev_open,
	.release	= gm_dev_release,
	.read		= gm_dev_read,
	.write		= gm_dev_write,
	.poll		= gm_dev_poll,
	.unlocked_ioctl	= gm_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice gm_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "gmlink",
	.fops	= &gm_dev_fops,
	.mode	= 0600,
};

static int __init gm_link_init(void)
{
	unsigned int i;
	int ret;

	if (ldisc_num < 0 || ldisc_num >= NR_LDISCS || txqlen < 2 ||
	    txqlen > 1024) {
		pr_err("ldisc_num %d (0..%d) or txqlen %u (2..1024) out of range\n",
		       ldisc_num, NR_LDISCS - 1, txqlen);
		return -EINVAL;
	}
	/*
	 * tty_register_ldisc() silently replaces whatever holds the number,
	 * N_TTY included, and a module cannot ask the tty core which numbers
	 * are registered. Every number up to N_CAN327 belongs to one of the
	 * kernel's own disciplines (loaded now or on demand) except
	 * N_DEVELOPMENT, the one kept for out-of-tree disciplines.
	 */
	if (ldisc_num != N_DEVELOPMENT && ldisc_num <= N_CAN327) {
		pr_err("ldisc_num %d belongs to a kernel line discipline: use %d (N_DEVELOPMENT)\n",
		       ldisc_num, N_DEVELOPMENT);
		return -EBUSY;
	}
	for (i = 0; i < GM_NODES_MAX; i++) {
		struct gm_node *n = &gm_nodes[i];

		spin_lock_init(&n->lock);
		n->meter_id = GM_ID_INVALID;
		atomic_set(&n->seq, get_random_u16());
		INIT_LIST_HEAD(&n->rxq);
		init_waitqueue_head(&n->rx_wait);
		init_waitqueue_head(&n->tx_wait);
		spin_lock_init(&n->clients_lock);
		INIT_LIST_HEAD(&n->clients);
	}
	gm_ldisc.num = ldisc_num;
	ret = tty_register_ldisc(&gm_ldisc);
	if (ret) {
		pr_err("cannot register line discipline %d: %d\n", ldisc_num, ret);
		return ret;
	}
	ret = misc_register(&gm_miscdev);
	if (ret) {
		tty_unregister_ldisc(&gm_ldisc);
		return ret;
	}
	return 0;
}

static void __exit gm_link_exit(void)
{
	unsigned int i;

	/* no tty can use the ldisc and no file is open: both hold the module */
	misc_deregister(&gm_miscdev);
	tty_unregister_ldisc(&gm_ldisc);
	for (i = 0; i < GM_NODES_MAX; i++) {
		struct gm_rxmsg *m, *tmp;

		list_for_each_entry_safe(m, tmp, &gm_nodes[i].rxq, list)
			kfree(m);
	}
}

module_init(gm_link_init);
module_exit(gm_link_exit);

MODULE_DESCRIPTION("gridmeter link layer line discipline (meter ring and uplink)");
MODULE_AUTHOR("gridmeter project");
MODULE_LICENSE("GPL");
MODULE_ALIAS_LDISC(N_DEVELOPMENT);
