#pragma once

// What the single-operation drivers (devid_sign_bench, devid_sas_token_bench,
// devid_tls_client_bench) share around MeasureRate: the JSON of a run and main's frame.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "rate_meter.h"

namespace devid::bench {

// AddRunOptions registers the options every driver takes: --threads (described by threads_help),
// --seconds, --label and --json-out.
inline void AddRunOptions(CLI::App& app, int& threads, const std::string& threads_help,
                          double& seconds, std::string& label, std::string& json_out) {
  app.add_option("--threads", threads, threads_help);
  app.add_option("--seconds", seconds, "measured time");
  app.add_option("--label", label, "name of this run in the output");
  app.add_option("--json-out", json_out, "also write the JSON result here");
}

// AddRateFields adds run's numbers to out, the operation counted as unit ("signatures"):
// <unit>, failures, elapsed_s, <unit>_per_s, cpu_s, <unit>_per_cpu_s and latency_ms.
inline void AddRateFields(nlohmann::json& out, const RateResult& run, const std::string& unit) {
  out[unit] = run.ok;
  out["failures"] = run.failures;
  out["elapsed_s"] = std::round(run.elapsed_s * 1000) / 1000;
  out[unit + "_per_s"] = std::round(run.PerSecond() * 10) / 10;
  out["cpu_s"] = std::round(run.cpu_s * 100) / 100;
  out[unit + "_per_cpu_s"] = std::round(run.PerCpuSecond() * 10) / 10;
  out["latency_ms"] = {
      {"p50", run.PercentileMs(0.50)}, {"p99", run.PercentileMs(0.99)}, {"max", run.MaxMs()}};
}

// WriteJsonFile writes out, indented, to path; an empty path writes nothing. False when the file
// could not be written.
inline bool WriteJsonFile(const std::string& path, const nlohmann::json& out) {
  if (path.empty()) return true;
  std::ofstream file(path);
  file << out.dump(2) << "\n";
  return static_cast<bool>(file);
}

// RunDriver runs a driver's Main and turns an escaped exception into exit status 2 with a message
// naming program.
inline int RunDriver(const char* program, int (*main)(int, char**), int argc, char** argv) {
  try {
    return main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 2;
  }
}

}  // namespace devid::bench
