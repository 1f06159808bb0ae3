#include "util/metrics.h"

#include <cstdio>

namespace dist_counter {

void Metrics::Describe(const std::string& name, const std::string& type,
                       const std::string& help, double scale) {
  MutexLock lock(&mu_);
  Family& family = families_[name];
  family.type = type;
  family.help = help;
  family.scale = scale;
}

std::atomic<uint64_t>* Metrics::Counter(const std::string& name,
                                        const std::string& labels) {
  MutexLock lock(&mu_);
  auto& slot = families_[name].counters[labels];
  if (!slot.value) slot.value = std::make_unique<std::atomic<uint64_t>>(0);
  ++slot.users;
  return slot.value.get();
}

std::atomic<int64_t>* Metrics::Gauge(const std::string& name,
                                     const std::string& labels) {
  MutexLock lock(&mu_);
  auto& slot = families_[name].gauges[labels];
  if (!slot.value) slot.value = std::make_unique<std::atomic<int64_t>>(0);
  ++slot.users;
  return slot.value.get();
}

namespace {

// Takes one user off `series`' entry for `labels`; erases it at none.
template <typename Map>
void ReleaseSeries(const std::string& labels, Map* series) {
  auto it = series->find(labels);
  if (it == series->end()) return;
  if (it->second.users > 1) {
    --it->second.users;
    return;
  }
  series->erase(it);
}

}  // namespace

void Metrics::Release(const std::string& name, const std::string& labels) {
  MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  ReleaseSeries(labels, &it->second.counters);
  ReleaseSeries(labels, &it->second.gauges);
}

void Metrics::AddCollector(std::function<void()> collector) {
  MutexLock lock(&mu_);
  collectors_.push_back(std::move(collector));
}

namespace {

// Integers are written exactly; scaled values with 9 significant digits,
// enough for microsecond sums without binary noise ("0.051", not
// "0.051000000000000004").
template <typename T>
void AppendSample(const std::string& name, const std::string& labels, T value,
                  double scale, std::string* out) {
  std::string number;
  if (scale == 1.0) {
    number = std::to_string(value);
  } else {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%.9g",
                  static_cast<double>(value) * scale);
    number = buffer;
  }
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " ";
  *out += number;
  *out += "\n";
}

}  // namespace

std::string Metrics::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    MutexLock lock(&mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();

  MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    if (!family.help.empty())
      out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " " + family.type + "\n";
    for (const auto& [labels, series] : family.counters) {
      AppendSample(name, labels, series.value->load(std::memory_order_relaxed),
                   family.scale, &out);
    }
    for (const auto& [labels, series] : family.gauges) {
      AppendSample(name, labels, series.value->load(std::memory_order_relaxed),
                   family.scale, &out);
    }
  }
  return out;
}

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace dist_counter
