// The `adalog` command: quantize | eval | run | bench | inspect. (Placeholder until the CLI lands.)
#include <cstdio>
int main() { std::puts("adalog: work in progress"); return 0; }
