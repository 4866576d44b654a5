// kubeknobs web control surface: one control per target the bridge's gateway session may see.
// Plain JavaScript, no dependencies: the page talks JSON over a WebSocket to the bridge that
// served it (see bridge/src/web/socket.rs for the messages). The truth is what the bridge
// says; a control shows the finger's value only while it is touched, and a rejected move shows
// its reason for a moment before the control returns to the truth.
'use strict';

const HOLD_MS = 800;          // a restart button must be held this long: the hold confirms
const FLASH_MS = 2500;        // how long a rejection stays on its control
const RECONNECT_MS = 1000;
const REPLICA_KINDS = ['deployment-replicas', 'statefulset-replicas', 'hpa-min-replicas', 'hpa-max-replicas'];
const TOGGLE_WORDS = {
  'deployment-paused': ['RUNNING', 'PAUSED'],
  'cronjob-suspended': ['ACTIVE', 'SUSPENDED'],
  'node-cordoned': ['SCHEDULABLE', 'CORDONED'],
};

const $ = (id) => document.getElementById(id);
const controls = new Map();   // target name → control
let ws = null;
let refused = false;
let staleReason = null;
let armSeen = false;          // a move was refused as not armed: show the arm key anyway
let layoutKey = '';

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

function fmt(v) {
  if (v === null || v === undefined) return '?';
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}

function clamp01(x) { return Math.min(1, Math.max(0, x)); }

// Pointer capture keeps a finger's moves on its control even when it slides off; a synthetic
// pointer (tests) cannot be captured, which is fine.
function capture(el, e) { try { el.setPointerCapture(e.pointerId); } catch (_) { /* synthetic */ } }

class Control {
  constructor(target) {
    this.name = target.name;
    this.kind = target.kind;
    this.bounds = target.bounds || { min: 0, max: 1, step: 1 };
    this.state = target.state || { target: target.name };
    this.flashUntil = 0;
    this.flashTimer = 0;
    this.card = document.createElement('section');
    this.card.className = 'card';
    this.card.dataset.target = this.name;
    this.card.dataset.kind = this.kind;
    const head = document.createElement('div');
    head.className = 'head';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = this.name;
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = this.kind + (target.object ? ' · ' + (target.namespace ? target.namespace + '/' : '') + target.object : '');
    head.append(name, kind);
    this.label = document.createElement('div');
    this.label.className = 'label';
    this.info = document.createElement('div');
    this.info.className = 'info';
    this.card.append(head, this.label);
  }

  frac(value) {
    const { min, max } = this.bounds;
    return max > min ? clamp01((value - min) / (max - min)) : 0;
  }

  update(state) { this.state = state; this.render(); }

  // A rejected move: its reason on the control for a moment, then the truth again.
  reject(message) {
    this.flashUntil = Date.now() + FLASH_MS;
    this.info.textContent = message;
    this.info.className = 'info reject' + (message.startsWith('held by') ? ' held' : '');
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => { this.local = null; this.render(); }, FLASH_MS);
    this.local = null;
    this.render();
  }

  renderInfo() {
    if (Date.now() < this.flashUntil) return;
    const s = this.state;
    // Someone else managing the value (an HPA, Argo CD, Flux) matters more than who moved it last.
    this.info.className = 'info' + (s.managed_by ? ' managed' : '');
    this.info.textContent = s.managed_by ? 'managed by ' + s.managed_by
      : s.changed_by ? 'changed by ' + s.changed_by : '';
  }

  isStale() { return Boolean(staleReason) || Boolean(this.state.error); }

  labelText() {
    const s = this.state;
    const numbers = s.autoscaler_desired != null
      ? `${fmt(s.desired)} (HPA at ${fmt(s.current)}, wants ${fmt(s.autoscaler_desired)})`
      : `${fmt(s.ready)}/${fmt(s.desired)}`;
    return `${this.name} ${numbers}` + (this.isStale() ? ' (stale)' : '');
  }

  render() {
    this.card.classList.toggle('stale', this.isStale());
    this.label.textContent = this.labelText();
    this.renderInfo();
  }

  touch(on) { send({ type: 'touch', target: this.name, on }); }
  release() {}
}

// A replica count: a fader over the catalog's bounds, and a thinner bar under it for ready
// (solid) and current (dim) replicas.
class Fader extends Control {
  constructor(target) {
    super(target);
    this.local = null;        // the finger's value (0..1), only while touched
    this.pending = null;      // the value waiting for the next animation frame
    this.sent = null;
    this.frame = 0;
    this.pointer = null;
    this.track = document.createElement('div');
    this.track.className = 'track';
    this.track.setAttribute('role', 'slider');
    this.track.setAttribute('aria-label', this.name);
    this.fill = document.createElement('div');
    this.fill.className = 'fill';
    this.value = document.createElement('div');
    this.value.className = 'value';
    this.track.append(this.fill, this.value);
    const bar = document.createElement('div');
    bar.className = 'readybar';
    this.current = document.createElement('div');
    this.current.className = 'current';
    this.ready = document.createElement('div');
    this.ready.className = 'ready';
    bar.append(this.current, this.ready);
    this.card.append(this.track, bar, this.info);
    this.track.addEventListener('pointerdown', (e) => this.down(e));
    this.track.addEventListener('pointermove', (e) => { if (e.pointerId === this.pointer) this.at(e); });
    for (const end of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      this.track.addEventListener(end, (e) => { if (e.pointerId === this.pointer) this.up(); });
    }
    this.render();
  }

  down(e) {
    if (this.pointer !== null) return;
    e.preventDefault();
    this.pointer = e.pointerId;
    capture(this.track, e);
    this.track.classList.add('touched');
    this.touch(true);
    this.at(e);
  }

  // The finger's position, snapped to the target's step, sent at most once per frame.
  at(e) {
    const rect = this.track.getBoundingClientRect();
    const { min, max, step } = this.bounds;
    let value = min + clamp01((e.clientX - rect.left) / rect.width) * (max - min);
    if (step > 0) value = min + Math.round((value - min) / step) * step;
    this.local = this.frac(value);
    this.pending = this.local;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
    this.render();
  }

  flush() {
    this.frame = 0;
    if (this.pending === null) return;
    if (this.pending !== this.sent) {
      send({ type: 'move', target: this.name, value: this.pending });
      this.sent = this.pending;
    }
    this.pending = null;
  }

  up() {
    if (this.frame) { cancelAnimationFrame(this.frame); this.flush(); }
    this.pointer = null;
    this.sent = null;
    this.track.classList.remove('touched');
    this.touch(false);
    this.local = null;
    this.render();
  }

  release() { if (this.pointer !== null) { this.pointer = null; this.local = null; this.track.classList.remove('touched'); } }

  render() {
    super.render();
    const s = this.state;
    const { min, max } = this.bounds;
    const shown = this.local !== null ? this.local : (s.desired == null ? 0 : this.frac(s.desired));
    this.fill.style.width = (shown * 100) + '%';
    const units = min + shown * (max - min);
    this.value.textContent = this.local !== null || s.desired != null ? fmt(Math.round(units * 1000) / 1000) : '?';
    this.track.dataset.value = String(units);
    this.track.setAttribute('aria-valuenow', String(units));
    this.current.style.width = (s.current == null ? 0 : this.frac(s.current) * 100) + '%';
    this.ready.style.width = (s.ready == null ? 0 : this.frac(s.ready) * 100) + '%';
  }
}

// Paused / suspended / cordoned: a press flips it (pointer down touches and moves, up releases).
class Toggle extends Control {
  constructor(target) {
    super(target);
    this.local = null;
    this.pointer = null;
    this.button = document.createElement('button');
    this.button.type = 'button';
    this.button.className = 'toggle';
    this.card.append(this.button, this.info);
    this.button.addEventListener('pointerdown', (e) => {
      if (this.pointer !== null) return;
      e.preventDefault();
      this.pointer = e.pointerId;
      capture(this.button, e);
      this.button.classList.add('touched');
      this.touch(true);
      const next = this.on() ? 0 : 1;
      this.local = next;
      send({ type: 'move', target: this.name, value: this.frac(next) });
      this.render();
    });
    for (const end of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      this.button.addEventListener(end, (e) => {
        if (e.pointerId !== this.pointer) return;
        this.pointer = null;
        this.button.classList.remove('touched');
        this.touch(false);
      });
    }
    this.render();
  }

  on() { return (this.local !== null ? this.local : this.state.desired) >= 1; }

  update(state) { this.local = null; super.update(state); }

  labelText() {
    const words = TOGGLE_WORDS[this.kind] || ['OFF', 'ON'];
    const s = this.state;
    const word = s.desired == null ? '?' : words[s.desired >= 1 ? 1 : 0];
    return `${this.name} ${word}` + (this.isStale() ? ' (stale)' : '');
  }

  render() {
    super.render();
    const words = TOGGLE_WORDS[this.kind] || ['OFF', 'ON'];
    this.button.textContent = words[this.on() ? 1 : 0];
    this.button.classList.toggle('on', this.on());
    this.button.setAttribute('aria-pressed', String(this.on()));
  }
}

// Rollout restart: press and hold (the hold is the confirmation); the gateway's cooldown, when
// it refuses a press, counts down on the button.
class Restart extends Control {
  constructor(target) {
    super(target);
    this.pointer = null;
    this.timer = 0;
    this.coolUntil = 0;
    this.button = document.createElement('button');
    this.button.type = 'button';
    this.button.className = 'press';
    this.progress = document.createElement('div');
    this.progress.className = 'progress';
    this.text = document.createElement('span');
    this.text.className = 'text';
    this.button.append(this.progress, this.text);
    this.card.append(this.button, this.info);
    this.button.addEventListener('pointerdown', (e) => this.down(e));
    for (const end of ['pointerup', 'pointercancel', 'lostpointercapture']) {
      this.button.addEventListener(end, (e) => { if (e.pointerId === this.pointer) this.up(); });
    }
    setInterval(() => this.render(), 500);
    this.render();
  }

  down(e) {
    if (this.pointer !== null || Date.now() < this.coolUntil) return;
    e.preventDefault();
    this.pointer = e.pointerId;
    capture(this.button, e);
    this.button.classList.add('touched');
    this.touch(true);
    this.progress.style.transition = `width ${HOLD_MS}ms linear`;
    this.progress.style.width = '100%';
    this.timer = setTimeout(() => {
      this.timer = 0;
      send({ type: 'move', target: this.name, value: 1 });
      this.info.textContent = 'restart sent';
    }, HOLD_MS);
  }

  up() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.pointer = null;
    this.progress.style.transition = 'none';
    this.progress.style.width = '0';
    this.button.classList.remove('touched');
    this.touch(false);
  }

  release() { if (this.pointer !== null) this.up(); }

  reject(message) {
    const wait = /try again in (\d+) ms/.exec(message);
    if (wait) this.coolUntil = Date.now() + Number(wait[1]);
    super.reject(message);
  }

  labelText() {
    return this.name + (this.isStale() ? ' (stale)' : '');
  }

  render() {
    super.render();
    const left = Math.ceil((this.coolUntil - Date.now()) / 1000);
    this.button.disabled = left > 0;
    this.text.textContent = left > 0 ? `cooldown ${left} s` : 'HOLD TO RESTART';
  }
}

function build(targets) {
  const main = $('controls');
  main.replaceChildren();
  controls.clear();
  for (const t of targets) {
    const control = REPLICA_KINDS.includes(t.kind) ? new Fader(t)
      : t.kind === 'deployment-restart' ? new Restart(t) : new Toggle(t);
    controls.set(t.name, control);
    main.append(control.card);
  }
  if (targets.length === 0) {
    const p = document.createElement('p');
    p.className = 'empty';
    p.textContent = 'No targets yet: waiting for the gateway.';
    main.append(p);
  }
}

// Destructive kinds need the arm key when the gateway says `requires_arm`; the catalog does not
// tell the bridge which, so the key shows for every non-replica kind, and for any target once a
// move was refused as not armed.
function showArm() {
  const needed = armSeen || [...controls.values()].some((c) => !REPLICA_KINDS.includes(c.kind));
  $('arm-row').hidden = !needed;
}

function setStatus() {
  const status = $('status');
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    status.textContent = 'bridge unreachable — reconnecting';
    status.className = 'status stale';
  } else if (staleReason) {
    status.textContent = '(stale) ' + staleReason;
    status.className = 'status stale';
  } else {
    status.textContent = 'live';
    status.className = 'status live';
  }
}

function handle(m) {
  switch (m.type) {
    case 'hello':
      $('bridge').textContent = m.bridge_id;
      document.title = m.bridge_id + ' · kubeknobs';
      if (m.pin) {
        const pin = sessionStorage.getItem('kubeknobs-pin');
        if (pin) send({ type: 'pin', pin });
        else askPin('');
      }
      break;
    case 'refused':
      refused = true;
      sessionStorage.removeItem('kubeknobs-pin');
      askPin(m.reason);
      break;
    case 'snapshot': {
      $('pin').hidden = true;
      $('bridge').textContent = m.bridge_id;
      const key = JSON.stringify(m.targets.map((t) => [t.name, t.kind, t.bounds]));
      if (key !== layoutKey) { layoutKey = key; build(m.targets); }
      for (const t of m.targets) {
        const c = controls.get(t.name);
        if (c && t.state) c.update(t.state);
      }
      staleReason = m.stale;
      setPresence(m.presence);
      for (const c of controls.values()) c.render();
      showArm();
      break;
    }
    case 'states':
      for (const s of m.states) { const c = controls.get(s.target); if (c) c.update(s); }
      break;
    case 'presence':
      setPresence(m.operators);
      break;
    case 'stale':
      staleReason = m.reason;
      for (const c of controls.values()) c.render();
      break;
    case 'rejected': {
      if (m.reason === 'not_armed') { armSeen = true; showArm(); }
      const c = controls.get(m.target);
      if (c) c.reject(m.message || m.reason.replace('_', ' '));
      break;
    }
    default:
      break;
  }
  setStatus();
}

function setPresence(text) {
  $('presence').textContent = text ? 'operators: ' + text : '';
}

function askPin(error) {
  $('pin').hidden = false;
  $('pin-error').textContent = error || '';
  $('pin-input').value = '';
  $('pin-input').focus();
}

function connect() {
  refused = false;
  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
  ws = new WebSocket(scheme + location.host + '/ws');
  ws.addEventListener('message', (e) => handle(JSON.parse(e.data)));
  ws.addEventListener('open', setStatus);
  ws.addEventListener('close', () => {
    // The bridge releases what this page held; the controls let go too.
    for (const c of controls.values()) c.release();
    setStatus();
    if (!refused) setTimeout(connect, RECONNECT_MS);
  });
}

function armKey() {
  const key = $('arm');
  let pointer = null;
  key.addEventListener('pointerdown', (e) => {
    if (pointer !== null) return;
    e.preventDefault();
    pointer = e.pointerId;
    capture(key, e);
    key.classList.add('on');
    key.textContent = 'ARMED';
    send({ type: 'arm', on: true });
  });
  for (const end of ['pointerup', 'pointercancel', 'lostpointercapture']) {
    key.addEventListener(end, (e) => {
      if (e.pointerId !== pointer) return;
      pointer = null;
      key.classList.remove('on');
      key.textContent = 'HOLD TO ARM';
      send({ type: 'arm', on: false });
    });
  }
}

$('pin').addEventListener('submit', (e) => {
  e.preventDefault();
  const pin = $('pin-input').value;
  sessionStorage.setItem('kubeknobs-pin', pin);
  $('pin-error').textContent = '';
  if (ws && ws.readyState === WebSocket.OPEN && !refused) send({ type: 'pin', pin });
  else connect();
});
// Long presses must not open menus or select text on phones.
document.addEventListener('contextmenu', (e) => e.preventDefault());
armKey();
connect();
