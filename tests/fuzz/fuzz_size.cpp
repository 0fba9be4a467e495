// libFuzzer: what users type for sizes and devices — parse_size ("11.5GiB", "800MiB", "4096") and
// the device spec ("cpu", "sim:512M", "cuda:1"). A value parse_size accepts must read back the
// same from its plain decimal form; a device spec is either parsed or refused with an Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "model/device_spec.hpp"
#include "vramfit/offload.hpp"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  vramfit::fuzz::write_seeds_if_asked([](vramfit::fuzz::SeedWriter &seeds) {
    for (const char *s : {"11.5GiB", "12GB", "800MiB", "4096", "0.5 kib", "1e3", "18446744073709551615", "16EiB",
                          "1.0000000000000000001TB", "sim:512M", "sim", "cuda:1", "cuda", "cpu", "auto"})
      seeds.add(s);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string text(reinterpret_cast<const char *>(data), size);
  if (const auto bytes = vramfit::parse_size(text)) {
    if (vramfit::parse_size(std::to_string(*bytes)) != bytes) vramfit::fuzz::violated("parse_size does not read back its value");
  }
  try {
    const auto spec = vramfit::model::parse_device(text);
    if (spec.kind == vramfit::model::DeviceKind::sim && spec.capacity > 0 && !text.starts_with("sim:"))
      vramfit::fuzz::violated("a sim capacity from a spec without one");
  } catch (const vramfit::Error &) {
  }
  return 0;
}
