#include "coordinator/io/haproxy/driver.hpp"

#include <memory>

namespace tide::haproxy {
namespace {

struct Later {
  uv_timer_t timer{};
  std::function<void()> fn;
};

// Runs fn on the loop after delay_ms, from a timer that frees itself.
void after(uv_loop_t* loop, std::uint64_t delay_ms, std::function<void()> fn) {
  auto* l = new Later;
  l->fn = std::move(fn);
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, [](uv_timer_t* t) {
    auto* self = static_cast<Later*>(t->data);
    auto run = std::move(self->fn);
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete static_cast<Later*>(h->data); });
    run();
  }, delay_ms, 0);
}

bool valid_address(const std::string& a) {
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  return uv_ip4_addr(a.c_str(), 1, &v4) == 0 || uv_ip6_addr(a.c_str(), 1, &v6) == 0;
}

DriverError api_error(const ApiError& e) { return DriverError{DriverError::Kind::Api, e.kind, e.detail}; }

std::uint64_t elapsed_us_since(std::uint64_t start_ns) { return (uv_hrtime() - start_ns) / 1000; }

}  // namespace

std::string_view to_string(DriverError::Kind kind) {
  switch (kind) {
    case DriverError::Kind::Api: return "runtime API error";
    case DriverError::Kind::UnknownBackend: return "unknown backend";
    case DriverError::Kind::UnknownInstance: return "unknown instance";
    case DriverError::Kind::NoFreeSlot: return "no free slot";
    case DriverError::Kind::BadArgument: return "bad argument";
  }
  return "unknown";
}

Driver::Driver(uv_loop_t* loop, RuntimeClient& client, Options options)
    : m_loop(loop), m_client(client), m_options(std::move(options)) {
  for (const auto& b : m_options.backends) m_backends[b.name].spec = b;
}

Driver::~Driver() {
  m_alive.reset();
  if (m_reconcile_timer != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(m_reconcile_timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

Driver::BackendState* Driver::find(const std::string& backend) {
  auto it = m_backends.find(backend);
  return it == m_backends.end() ? nullptr : &it->second;
}

const std::map<std::string, std::uint32_t>& Driver::assignment(const std::string& backend) const {
  static const std::map<std::string, std::uint32_t> kEmpty;
  auto it = m_backends.find(backend);
  return it == m_backends.end() ? kEmpty : it->second.assignment;
}

const std::map<std::string, WantedMember>& Driver::wanted(const std::string& backend) const {
  static const std::map<std::string, WantedMember> kEmpty;
  auto it = m_backends.find(backend);
  return it == m_backends.end() ? kEmpty : it->second.wanted;
}

void Driver::fail_later(OpCallback cb, DriverError error) {
  after(m_loop, 0, [cb = std::move(cb), error = std::move(error)] { cb(tl::make_unexpected(error)); });
}

void Driver::enqueue(BackendState& b, std::uint32_t slot, std::function<void()> op) {
  auto& q = b.slot_ops[slot];
  q.push_back(std::move(op));
  if (q.size() == 1) q.front()();
}

void Driver::finish(BackendState& b, std::uint32_t slot) {
  auto it = b.slot_ops.find(slot);
  if (it == b.slot_ops.end() || it->second.empty()) return;
  it->second.pop_front();
  if (it->second.empty()) {
    b.slot_ops.erase(it);
    return;
  }
  // The next operation on this slot starts from a fresh loop iteration so that
  // the finishing operation's callback has returned first.
  std::weak_ptr<bool> alive = m_alive;
  std::string name = b.spec.name;
  after(m_loop, 0, [this, alive, name, slot] {
    if (alive.expired()) return;
    BackendState* bs = find(name);
    if (bs == nullptr) return;
    auto q = bs->slot_ops.find(slot);
    if (q != bs->slot_ops.end() && !q->second.empty()) q->second.front()();
  });
}

// Sends the commands pipelined; done() gets the first failure, or success once
// every answer is in.
void Driver::run_commands(std::vector<std::string> commands,
                          std::function<void(tl::expected<void, DriverError>)> done) {
  struct Batch {
    std::size_t left;
    std::optional<DriverError> error;
    std::function<void(tl::expected<void, DriverError>)> done;
  };
  if (commands.empty()) {
    after(m_loop, 0, [done = std::move(done)] { done({}); });
    return;
  }
  auto batch = std::make_shared<Batch>(Batch{commands.size(), std::nullopt, std::move(done)});
  for (auto& c : commands) {
    std::string cmd = c;
    m_client.send(std::move(c), [batch, cmd](RuntimeClient::Answer a) {
      if (!batch->error) {
        if (!a) batch->error = api_error(a.error());
        else if (is_error_answer(cmd, *a)) {
          batch->error = DriverError{DriverError::Kind::Api, ApiError::Kind::Rejected, "'" + cmd + "': " + *a};
        }
      }
      if (--batch->left == 0) {
        if (batch->error) batch->done(tl::make_unexpected(*batch->error));
        else batch->done({});
      }
    });
  }
}

void Driver::register_instance(const std::string& backend, const std::string& instance_id,
                               const std::string& address, std::uint16_t port, OpCallback cb) {
  const std::uint64_t start = uv_hrtime();
  BackendState* b = find(backend);
  if (b == nullptr) return fail_later(std::move(cb), {DriverError::Kind::UnknownBackend, {}, backend});
  if (!valid_address(address) || port == 0 || instance_id.empty()) {
    return fail_later(std::move(cb), {DriverError::Kind::BadArgument, {},
                                      "need an IP literal and a port 1..65535, got '" + address + "' port " +
                                          std::to_string(port)});
  }
  std::vector<std::string> same_endpoint;
  for (const auto& [id, member] : b->wanted) {
    if (id != instance_id && member.address == address && member.port == port) same_endpoint.push_back(id);
  }
  for (const std::string& id : same_endpoint) {
    remove_instance(backend, id, [](const tl::expected<OpResult, DriverError>&) {});
  }
  std::uint32_t slot = 0;
  if (auto a = b->assignment.find(instance_id); a != b->assignment.end()) {
    slot = a->second;
  } else {
    std::set<std::uint32_t> taken;
    for (const auto& [id, s] : b->assignment) taken.insert(s);
    for (const auto& [s, q] : b->slot_ops) taken.insert(s);
    auto free = choose_free_slot(b->spec.slot_count, taken);
    if (!free) {
      return fail_later(std::move(cb), {DriverError::Kind::NoFreeSlot, {},
                                        backend + " has all " + std::to_string(b->spec.slot_count) + " slots in use"});
    }
    slot = *free;
    b->assignment[instance_id] = slot;
  }
  b->wanted[instance_id] = WantedMember{address, port, true};
  const std::string server = slot_name(b->spec.slot_prefix, slot);
  std::weak_ptr<bool> alive = m_alive;
  enqueue(*b, slot, [this, alive, backend, instance_id, address, port, slot, server, start, cb = std::move(cb)] {
    SlotCommand addr{SlotCommand::Kind::SetAddress, backend, server, address, port};
    SlotCommand ready{SlotCommand::Kind::SetReady, backend, server, {}, 0};
    run_commands({addr.render(), ready.render()}, [=, this](tl::expected<void, DriverError> r) {
      if (alive.expired()) return;
      BackendState* bs = find(backend);
      if (bs != nullptr) {
        bs->assignment[instance_id] = slot;
        finish(*bs, slot);
      }
      if (!r) return cb(tl::make_unexpected(r.error()));
      cb(OpResult{backend, instance_id, slot, server, elapsed_us_since(start), false});
    });
  });
}

void Driver::remove_instance(const std::string& backend, const std::string& instance_id, OpCallback cb) {
  const std::uint64_t start = uv_hrtime();
  BackendState* b = find(backend);
  if (b == nullptr) return fail_later(std::move(cb), {DriverError::Kind::UnknownBackend, {}, backend});
  b->wanted.erase(instance_id);
  auto a = b->assignment.find(instance_id);
  if (a == b->assignment.end()) {
    std::weak_ptr<bool> alive = m_alive;
    after(m_loop, 0, [alive, backend, instance_id, start, cb = std::move(cb)] {
      if (alive.expired()) return;
      cb(OpResult{backend, instance_id, 0, {}, elapsed_us_since(start), false});
    });
    return;
  }
  const std::uint32_t slot = a->second;
  const std::string server = slot_name(b->spec.slot_prefix, slot);
  std::weak_ptr<bool> alive = m_alive;
  enqueue(*b, slot, [this, alive, backend, instance_id, slot, server, start, cb = std::move(cb)] {
    SlotCommand c{SlotCommand::Kind::SetMaint, backend, server, {}, 0};
    run_commands({c.render()}, [=, this](tl::expected<void, DriverError> r) {
      if (alive.expired()) return;
      if (BackendState* bs = find(backend)) {
        // Free unless registered again meanwhile.
        if (auto it = bs->assignment.find(instance_id);
            it != bs->assignment.end() && it->second == slot && !bs->wanted.contains(instance_id)) {
          bs->assignment.erase(it);
        }
        finish(*bs, slot);
      }
      if (!r) return cb(tl::make_unexpected(r.error()));
      cb(OpResult{backend, instance_id, slot, server, elapsed_us_since(start), false});
    });
  });
}

void Driver::drain_instance(const std::string& backend, const std::string& instance_id, std::uint64_t timeout_ms,
                            OpCallback cb) {
  const std::uint64_t start = uv_hrtime();
  BackendState* b = find(backend);
  if (b == nullptr) return fail_later(std::move(cb), {DriverError::Kind::UnknownBackend, {}, backend});
  auto a = b->assignment.find(instance_id);
  if (a == b->assignment.end()) {
    return fail_later(std::move(cb), {DriverError::Kind::UnknownInstance, {}, backend + "/" + instance_id});
  }
  // From now on reconcile must not put it back.
  b->wanted.erase(instance_id);
  const std::uint32_t slot = a->second;
  if (timeout_ms == 0) timeout_ms = m_options.drain_timeout_ms;
  std::weak_ptr<bool> alive = m_alive;
  enqueue(*b, slot, [this, alive, backend, instance_id, slot, start, timeout_ms, cb = std::move(cb)] {
    BackendState* bs = find(backend);
    if (bs == nullptr) return;
    const std::string server = slot_name(bs->spec.slot_prefix, slot);
    SlotCommand c{SlotCommand::Kind::SetDrain, backend, server, {}, 0};
    run_commands({c.render()}, [=, this](tl::expected<void, DriverError> r) {
      if (alive.expired()) return;
      BackendState* bs2 = find(backend);
      if (bs2 == nullptr) return;
      if (!r) {
        finish(*bs2, slot);
        return cb(tl::make_unexpected(r.error()));
      }
      drain_poll(*bs2, instance_id, slot, start, uv_now(m_loop) + timeout_ms, cb);
    });
  });
}

void Driver::drain_poll(BackendState& b, const std::string& id, std::uint32_t slot, std::uint64_t started_ns,
                        std::uint64_t deadline_ms, OpCallback cb) {
  const std::string backend = b.spec.name;
  const std::string server = slot_name(b.spec.slot_prefix, slot);
  std::weak_ptr<bool> alive = m_alive;

  // Last step: maint, free the slot (unless the instance was registered again
  // meanwhile), report.
  auto complete = [this, alive, backend, server, id, slot, started_ns, cb](bool forced) {
    std::vector<std::string> cmds;
    if (forced) cmds.push_back("shutdown sessions server " + backend + "/" + server);
    cmds.push_back(SlotCommand{SlotCommand::Kind::SetMaint, backend, server, {}, 0}.render());
    run_commands(std::move(cmds), [=, this](tl::expected<void, DriverError> r) {
      if (alive.expired()) return;
      BackendState* bs = find(backend);
      if (bs == nullptr) return;
      if (r && !bs->wanted.contains(id)) bs->assignment.erase(id);
      finish(*bs, slot);
      if (!r) return cb(tl::make_unexpected(r.error()));
      cb(OpResult{backend, id, slot, server, elapsed_us_since(started_ns), forced});
    });
  };

  m_client.send("show stat " + backend + " 4 -1", [=, this](RuntimeClient::Answer a) {
    if (alive.expired()) return;
    BackendState* bs = find(backend);
    if (bs == nullptr) return;
    if (!a) {
      finish(*bs, slot);
      return cb(tl::make_unexpected(api_error(a.error())));
    }
    auto rows = parse_show_stat(*a);
    if (!rows) {
      finish(*bs, slot);
      return cb(tl::make_unexpected(DriverError{DriverError::Kind::Api, ApiError::Kind::BadAnswer, rows.error()}));
    }
    bool idle = true;
    bool seen = false;
    for (const auto& row : *rows) {
      if (row.proxy == backend && row.server == server) {
        seen = true;
        idle = row.scur == 0 && row.qcur == 0;
      }
    }
    if (!seen) {
      finish(*bs, slot);
      return cb(tl::make_unexpected(DriverError{DriverError::Kind::Api, ApiError::Kind::BadAnswer,
                                                backend + "/" + server + " missing from show stat"}));
    }
    if (idle) return complete(false);
    if (uv_now(m_loop) >= deadline_ms) return complete(true);
    after(m_loop, m_options.drain_poll_ms, [=, this] {
      if (alive.expired()) return;
      if (BackendState* b2 = find(backend)) drain_poll(*b2, id, slot, started_ns, deadline_ms, cb);
    });
  });
}

void Driver::for_each_backend_state(bool unknown_is_empty, BackendStep step, StepDone done) {
  struct Fan {
    std::size_t left = 0;
    std::optional<DriverError> error;  // the first one
    StepDone done;
  };
  auto fan = std::make_shared<Fan>(Fan{m_backends.size(), std::nullopt, std::move(done)});
  if (m_backends.empty()) {
    after(m_loop, 0, [fan] { fan->done(std::nullopt); });
    return;
  }
  StepDone one_done = [fan](std::optional<DriverError> error) {
    if (error && !fan->error) fan->error = std::move(error);
    if (--fan->left == 0) fan->done(fan->error);
  };
  std::weak_ptr<bool> alive = m_alive;
  for (auto& [name, state] : m_backends) {
    const std::string backend = name;
    m_client.send("show servers state " + backend,
                  [this, alive, backend, unknown_is_empty, step, one_done](RuntimeClient::Answer a) {
                    if (alive.expired()) return;
                    if (!a) return one_done(api_error(a.error()));
                    // A backend this HAProxy does not have (its configuration is
                    // older): the runtime API answers with a sentence, not a table.
                    if (unknown_is_empty && a->rfind("Can't find backend.", 0) == 0) return one_done(std::nullopt);
                    BackendState* b = find(backend);
                    if (b == nullptr) return one_done(std::nullopt);
                    auto actual = parse_servers_state(*a);
                    if (!actual) {
                      return one_done(
                          DriverError{DriverError::Kind::Api, ApiError::Kind::BadAnswer, backend + ": " + actual.error()});
                    }
                    step(*b, std::move(*actual), one_done);
                  });
  }
}

void Driver::adopt_members(Resolver resolve, AdoptCallback cb) {
  auto adopted = std::make_shared<std::vector<AdoptedMember>>();
  for_each_backend_state(
      true,
      [adopted, resolve = std::move(resolve)](BackendState& b, std::vector<ServerState> actual, const StepDone& done) {
        for (const ServerState& st : actual) {
          auto slot = slot_index(st.server, b.spec.slot_prefix, b.spec.slot_count);
          if (!slot) continue;
          auto id = resolve(b.spec.name, st.address, st.port);
          if (!id || b.assignment.contains(*id)) continue;
          b.assignment[*id] = *slot;
          b.wanted[*id] = WantedMember{st.address, st.port, st.in_rotation()};
          adopted->push_back(AdoptedMember{b.spec.name, *id, *slot, st.in_rotation()});
        }
        done(std::nullopt);
      },
      [adopted, cb = std::move(cb)](std::optional<DriverError> error) {
        if (error) cb(tl::make_unexpected(*error));
        else cb(std::move(*adopted));
      });
}

void Driver::reconcile(ReconcileCallback cb) {
  auto result = std::make_shared<ReconcileResult>();
  for_each_backend_state(
      false,
      [this, result](BackendState& b, std::vector<ServerState> actual, const StepDone& done) {
        BackendPlanInput in;
        in.backend = b.spec.name;
        in.slot_prefix = b.spec.slot_prefix;
        in.slot_count = b.spec.slot_count;
        in.wanted = b.wanted;
        in.assignment = b.assignment;
        in.actual = std::move(actual);
        for (const auto& [slot, q] : b.slot_ops) in.busy_slots.insert(slot);
        BackendPlan plan = plan_backend(in);
        // Slots owned by running operations keep their assignment; others follow the plan.
        std::map<std::string, std::uint32_t> next = plan.assignment;
        for (const auto& [id, slot] : b.assignment) {
          if (in.busy_slots.contains(slot)) next[id] = slot;
        }
        b.assignment = std::move(next);
        for (auto& u : plan.unplaced) result->unplaced.push_back(b.spec.name + "/" + u);
        for (auto& n : plan.notes) result->notes.push_back(std::move(n));
        result->commands += plan.commands.size();
        std::vector<std::string> cmds;
        for (const auto& c : plan.commands) cmds.push_back(c.render());
        run_commands(std::move(cmds), [done](tl::expected<void, DriverError> r) {
          done(r ? std::nullopt : std::optional<DriverError>(r.error()));
        });
      },
      [result, cb = std::move(cb)](std::optional<DriverError> error) {
        if (error) cb(tl::make_unexpected(*error));
        else cb(*result);
      });
}

void Driver::reconcile_every(std::uint64_t interval_ms, ReconcileCallback on_result) {
  m_on_reconcile = std::move(on_result);
  if (m_reconcile_timer == nullptr) {
    m_reconcile_timer = new uv_timer_t;
    uv_timer_init(m_loop, m_reconcile_timer);
    m_reconcile_timer->data = this;
  }
  if (interval_ms == 0) {
    uv_timer_stop(m_reconcile_timer);
    return;
  }
  uv_timer_start(m_reconcile_timer, [](uv_timer_t* t) {
    auto* self = static_cast<Driver*>(t->data);
    if (self->m_reconciling) return;
    self->m_reconciling = true;
    std::weak_ptr<bool> alive = self->m_alive;
    self->reconcile([self, alive](tl::expected<ReconcileResult, DriverError> r) {
      if (alive.expired()) return;
      self->m_reconciling = false;
      if (self->m_on_reconcile) self->m_on_reconcile(std::move(r));
    });
  }, interval_ms, interval_ms);
}

}  // namespace tide::haproxy
