#include "coordinator/io/provider/exec_provider.hpp"

#include <cstdlib>
#include <utility>

#include <nlohmann/json.hpp>

#include "coordinator/io/provider/subprocess.hpp"
#include "coordinator/io/provider/uv_work.hpp"

namespace tide::provider {
using nlohmann::json;

namespace {

constexpr int kContractVersion = 1;
constexpr std::size_t kMaxProviderIdLength = 256;
constexpr std::size_t kMaxErrorText = 1024;

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// The end of stderr: scripts tend to print the actual reason last.
std::string stderr_reason(const std::string& err) {
  std::string text = trim(err);
  if (text.size() > kMaxErrorText) text = "..." + text.substr(text.size() - kMaxErrorText);
  return text.empty() ? "(no message on stderr)" : text;
}

tl::expected<std::string, std::string> string_field(const json& j, const char* name, bool required,
                                                    std::size_t max_len) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    if (required) return tl::unexpected(std::string("missing field \"") + name + "\"");
    return std::string{};
  }
  if (!it->is_string()) {
    return tl::unexpected(std::string("field \"") + name + "\" is not a string but " + it->type_name());
  }
  auto value = it->get<std::string>();
  if (required && value.empty()) return tl::unexpected(std::string("field \"") + name + "\" is empty");
  if (value.size() > max_len) {
    return tl::unexpected(std::string("field \"") + name + "\" is longer than " +
                          std::to_string(max_len) + " bytes");
  }
  return value;
}

tl::expected<std::uint16_t, std::string> port_field(const json& j, bool required) {
  const auto it = j.find("port");
  if (it == j.end() || it->is_null()) {
    if (required) return tl::unexpected(std::string("missing field \"port\""));
    return std::uint16_t{0};
  }
  if (!it->is_number_integer()) {
    return tl::unexpected(std::string("field \"port\" is not an integer but ") + it->type_name());
  }
  const auto value = it->get<std::int64_t>();
  if (value < (required ? 1 : 0) || value > 65535) {
    return tl::unexpected("field \"port\" is out of range: " + std::to_string(value));
  }
  return static_cast<std::uint16_t>(value);
}

}  // namespace

json launch_request_json(const LaunchRequest& r) {
  return json{{"version", kContractVersion},
              {"operation", "launch"},
              {"instance_id", r.instance_id},
              {"group", r.group},
              {"idempotency_key", r.idempotency_key},
              {"launch",
               {{"command", r.launch.command},
                {"port", r.launch.port},
                {"env", r.launch.env},
                {"env_files", r.launch.env_files}}},
              {"agent",
               {{"path", r.agent.agent_path},
                {"coordinator_endpoint", r.agent.coordinator_endpoint},
                {"coordinator_public_key", r.agent.coordinator_public_key},
                {"enrollment_token", r.agent.enrollment_token},
                {"readiness_path", r.agent.readiness_path},
                {"readiness_period_ms", r.agent.readiness_period_ms},
                {"log_level", r.agent.log_level}}}};
}

tl::expected<LaunchResult, std::string> parse_launch_result(const json& j) {
  if (!j.is_object()) return tl::unexpected(std::string("expected a JSON object, got ") + j.type_name());
  LaunchResult out;
  auto id = string_field(j, "provider_id", true, kMaxProviderIdLength);
  if (!id) return tl::unexpected(id.error());
  auto address = string_field(j, "address", true, 255);
  if (!address) return tl::unexpected(address.error());
  auto port = port_field(j, true);
  if (!port) return tl::unexpected(port.error());
  out.provider_id = std::move(*id);
  out.address = std::move(*address);
  out.port = *port;
  if (const auto it = j.find("existing"); it != j.end()) {
    if (!it->is_boolean()) return tl::unexpected(std::string("field \"existing\" is not a boolean"));
    out.existing = it->get<bool>();
  }
  return out;
}

tl::expected<ProviderInstance, std::string> parse_instance(const json& j) {
  if (!j.is_object()) return tl::unexpected(std::string("expected a JSON object, got ") + j.type_name());
  ProviderInstance out;
  auto id = string_field(j, "provider_id", true, kMaxProviderIdLength);
  if (!id) return tl::unexpected(id.error());
  out.provider_id = std::move(*id);
  for (auto [name, field] : {std::pair{"instance_id", &out.instance_id}, std::pair{"group", &out.group},
                             std::pair{"idempotency_key", &out.idempotency_key},
                             std::pair{"address", &out.address}, std::pair{"message", &out.message}}) {
    auto value = string_field(j, name, false, name == std::string("message") ? kMaxErrorText : 255);
    if (!value) return tl::unexpected(value.error());
    *field = std::move(*value);
  }
  auto port = port_field(j, false);
  if (!port) return tl::unexpected(port.error());
  out.port = *port;
  auto state_text = string_field(j, "state", true, 32);
  if (!state_text) return tl::unexpected(state_text.error());
  const auto state = parse_instance_state(*state_text);
  if (!state) {
    return tl::unexpected("field \"state\" is \"" + *state_text +
                          "\", not one of pending, running, stopping, gone");
  }
  out.state = *state;
  if (const auto it = j.find("started_at_ms"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) return tl::unexpected(std::string("field \"started_at_ms\" is not an integer"));
    out.started_at_ms = it->get<std::int64_t>();
  }
  return out;
}

tl::expected<std::vector<ProviderInstance>, std::string> parse_instance_list(const json& j) {
  if (!j.is_object()) return tl::unexpected(std::string("expected a JSON object, got ") + j.type_name());
  const auto it = j.find("instances");
  if (it == j.end()) return tl::unexpected(std::string("missing field \"instances\""));
  if (!it->is_array()) return tl::unexpected(std::string("field \"instances\" is not an array"));
  std::vector<ProviderInstance> out;
  std::size_t index = 0;
  for (const auto& item : *it) {
    auto instance = parse_instance(item);
    if (!instance) return tl::unexpected("instances[" + std::to_string(index) + "]: " + instance.error());
    out.push_back(std::move(*instance));
    ++index;
  }
  return out;
}

struct ExecProvider::State {
  uv_loop_t* loop = nullptr;
  ExecProviderOptions options;
  ProviderMetrics* metrics = nullptr;  // null once the provider is destroyed
};

namespace {

using StatePtr = std::shared_ptr<ExecProvider::State>;

// Runs one script call; parse turns its stdout (already known to be a JSON
// value, or null when empty) into the result.
template <typename T>
void call_script(const StatePtr& s, const std::string& operation, const std::string& script,
                 std::uint32_t timeout_ms, const json& input, OperationCounters ProviderMetrics::*counter,
                 std::function<tl::expected<T, std::string>(const json&)> parse,
                 std::function<void(tl::expected<T, ProviderError>)> done) {
  ++(s->metrics->*counter).calls;
  auto fail = [s, counter, done](ProviderError error) {
    if (s->metrics == nullptr) return;
    ++(s->metrics->*counter).failures;
    done(tl::unexpected(std::move(error)));
  };
  if (script.empty()) {
    run_after(s->loop, 0, [fail, operation] {
      fail(ProviderError{"exec provider: no " + operation + " script configured", false});
    });
    return;
  }
  SubprocessRequest req;
  req.argv = {script};
  std::map<std::string, std::string> env;
  for (const auto& name : s->options.inherited_env) {
    if (const char* value = std::getenv(name.c_str())) env[name] = value;
  }
  for (const auto& [k, v] : s->options.env) env[k] = v;
  env["TIDE_PROVIDER_OPERATION"] = operation;
  for (const auto& [k, v] : env) req.env.push_back(k + "=" + v);
  req.cwd = s->options.working_dir;
  req.stdin_data = input.dump() + "\n";
  req.timeout_ms = timeout_ms;
  req.max_output_bytes = s->options.max_output_bytes;
  const std::string what = operation + " script " + script;
  run_subprocess(
      s->loop, std::move(req),
      [s, what, timeout_ms, parse = std::move(parse), done, fail](
          tl::expected<SubprocessResult, std::string> run) {
        if (s->metrics == nullptr) return;
        if (!run) {
          fail(ProviderError{"exec provider: " + run.error(), false});
          return;
        }
        if (run->timed_out) {
          fail(ProviderError{"exec provider: " + what + " timed out after " +
                                 std::to_string(timeout_ms) + " ms and was killed",
                             true});
          return;
        }
        if (run->term_signal != 0) {
          fail(ProviderError{"exec provider: " + what + " was killed by signal " +
                                 std::to_string(run->term_signal) + ": " + stderr_reason(run->stderr_data),
                             true});
          return;
        }
        if (run->exit_status != 0) {
          fail(ProviderError{"exec provider: " + what + " exited with status " +
                                 std::to_string(run->exit_status) + ": " + stderr_reason(run->stderr_data),
                             run->exit_status == kExecRetryableExitStatus});
          return;
        }
        if (run->output_truncated) {
          fail(ProviderError{"exec provider: " + what + " wrote more output than allowed or left its output open",
                             true});
          return;
        }
        json output;
        const std::string text = trim(run->stdout_data);
        if (!text.empty()) {
          output = json::parse(text, nullptr, false);
          if (output.is_discarded()) {
            std::string shown = text.substr(0, 200);
            fail(ProviderError{"exec provider: " + what + " printed invalid JSON on stdout: " + shown, false});
            return;
          }
        }
        auto parsed = parse(output);
        if (!parsed) {
          fail(ProviderError{"exec provider: " + what + " printed an unexpected answer: " + parsed.error(),
                             false});
          return;
        }
        done(std::move(*parsed));
      });
}

}  // namespace

ExecProvider::ExecProvider(uv_loop_t* loop, ExecProviderOptions options)
    : m_state(std::make_shared<State>()) {
  m_state->loop = loop;
  m_state->options = std::move(options);
  m_state->metrics = &m_metrics;
}

ExecProvider::~ExecProvider() { m_state->metrics = nullptr; }

void ExecProvider::launch(LaunchRequest request, LaunchCallback done) {
  const StatePtr s = m_state;
  for (const auto& [what, value] : {std::pair{"instance_id", &request.instance_id},
                                    std::pair{"idempotency_key", &request.idempotency_key}}) {
    if (auto problem = check_identifier(what, *value); !problem.empty()) {
      ++m_metrics.launch.calls;
      ++m_metrics.launch.failures;
      run_after(s->loop, 0, [done, problem] { done(tl::unexpected(ProviderError{problem, false})); });
      return;
    }
  }
  call_script<LaunchResult>(s, "launch", s->options.launch_script, s->options.launch_timeout_ms,
                            launch_request_json(request), &ProviderMetrics::launch,
                            parse_launch_result, std::move(done));
}

void ExecProvider::terminate(std::string provider_id, std::uint32_t grace_ms, TerminateCallback done) {
  const StatePtr s = m_state;
  const json input{{"version", kContractVersion},
                   {"operation", "terminate"},
                   {"provider_id", provider_id},
                   {"grace_ms", grace_ms}};
  call_script<bool>(
      s, "terminate", s->options.terminate_script, s->options.terminate_timeout_ms + grace_ms, input,
      &ProviderMetrics::terminate,
      [](const json& j) -> tl::expected<bool, std::string> {
        if (!j.is_null() && !j.is_object()) {
          return tl::unexpected(std::string("expected nothing or a JSON object, got ") + j.type_name());
        }
        return true;
      },
      [done = std::move(done)](tl::expected<bool, ProviderError> r) {
        if (!r) {
          done(tl::unexpected(r.error()));
        } else {
          done({});
        }
      });
}

void ExecProvider::list(ListCallback done) {
  const StatePtr s = m_state;
  const json input{{"version", kContractVersion}, {"operation", "list"}};
  call_script<std::vector<ProviderInstance>>(s, "list", s->options.list_script,
                                             s->options.list_timeout_ms, input, &ProviderMetrics::list,
                                             parse_instance_list, std::move(done));
}

void ExecProvider::describe(std::string provider_id, DescribeCallback done) {
  const StatePtr s = m_state;
  if (!s->options.describe_script.empty()) {
    const json input{{"version", kContractVersion}, {"operation", "describe"}, {"provider_id", provider_id}};
    call_script<ProviderInstance>(
        s, "describe", s->options.describe_script, s->options.describe_timeout_ms, input,
        &ProviderMetrics::describe,
        [provider_id](const json& j) -> tl::expected<ProviderInstance, std::string> {
          auto instance = parse_instance(j);
          if (instance && instance->provider_id != provider_id) {
            return tl::unexpected("asked for \"" + provider_id + "\" but got \"" + instance->provider_id + "\"");
          }
          return instance;
        },
        std::move(done));
    return;
  }
  // No describe script: answer from list.
  const json input{{"version", kContractVersion}, {"operation", "list"}};
  call_script<ProviderInstance>(
      s, "list", s->options.list_script, s->options.list_timeout_ms, input, &ProviderMetrics::describe,
      [provider_id](const json& j) -> tl::expected<ProviderInstance, std::string> {
        auto all = parse_instance_list(j);
        if (!all) return tl::unexpected(all.error());
        for (auto& instance : *all) {
          if (instance.provider_id == provider_id) return std::move(instance);
        }
        ProviderInstance gone;
        gone.provider_id = provider_id;
        gone.state = InstanceState::Gone;
        gone.message = "not listed by the provider";
        return gone;
      },
      std::move(done));
}

}  // namespace tide::provider
