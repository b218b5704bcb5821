// Genetic search over pooling choices: the plain-data parts of `convpool study --search
// genetic` (tools/cli_study_genetic.cpp runs the trainings). A genotype holds one pooling
// method per searchable pool line of a model file; generations are bred by tournament
// selection, uniform crossover and per-gene mutation, with elitism. Every random draw comes
// from the search seed and the generation number alone, so a generation is a pure function of
// the previous one's fitness: a search replays exactly from its table of evaluated genotypes
// (after a kill, or in every process of a sharded search).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace convpool {

// The model-file lines a genotype rewrites: `pool` layers that are not global, in file order
// (a line inside a repeat block is one gene for all its copies). Each with its line number
// (1-based) and the layer's name (the first copy's, in a repeat block).
struct PoolGene {
  int line = 0;
  std::string layer;
};
std::vector<PoolGene> searchable_pool_lines(const std::string& model_text,
                                            const std::string& origin);

// The model text with the pool layer on each gene's line replaced by its choice, a method as
// `--pool` takes it ("avgtopk:k=2", "lip"): the layer keeps its name, inputs, multipliers and
// window geometry (unless the choice sets size, stride or pad), and its comment. A bad choice
// is a one-line error.
std::string rewrite_pool_lines(const std::string& model_text, const std::string& origin,
                               const std::vector<PoolGene>& genes,
                               const std::vector<std::string>& choices);

struct GeneticSettings {
  int population = 8;
  int generations = 5;
  int tournament = 2;      // individuals drawn per parent; the fittest wins
  int elite = 1;           // the best individuals copied unchanged into the next generation
  double crossover = 0.9;  // probability that a child mixes two parents (uniform crossover)
  double mutation = 0.2;   // probability that each gene is redrawn (to another choice)
  uint64_t seed = 1;
};
// One-line errors for settings out of range, naming the flag.
void check_genetic_settings(const GeneticSettings& s, int genes, int choices);

// One choice index per gene.
using Genotype = std::vector<int>;

// A genotype's directory name: "g" and one base-36 digit per gene ("g0a3").
std::string genotype_label(const Genotype& g);
// "pool1=max pool2=avgtopk:k=2": the choices, each named by its layer.
std::string describe_genotype(const Genotype& g, const std::vector<PoolGene>& genes,
                              const std::vector<std::string>& pools);

// A genotype's measured fitness: the validation accuracy after its short training (ties are
// broken by the lower validation loss, then by the earlier individual).
struct Fitness {
  double accuracy = 0, loss = 0;
};

// Generation 0: random genotypes.
std::vector<Genotype> first_generation(const GeneticSettings& s, int genes, int choices);
// Generation `generation` (>= 1) from the previous one and its fitness (same order).
std::vector<Genotype> next_generation(const GeneticSettings& s, int generation, int choices,
                                      const std::vector<Genotype>& previous,
                                      const std::vector<Fitness>& fitness);

// The images held out of a training set of n for fitness: a seeded random subset of `count`
// indices, ascending (a random subset, since a folder's images come class by class).
std::vector<size_t> hold_out_indices(size_t n, size_t count, uint64_t seed);

// One row of individuals.csv: an individual of one generation. `repeat`: its genotype was
// evaluated before (in an earlier generation or earlier in this one), so its fitness is
// that evaluation's.
struct SearchIndividual {
  int generation = 1, index = 1;  // both from 1
  Genotype genotype;
  Fitness fitness;
  bool repeat = false;
  double seconds = 0;  // the evaluation's training time
};
std::string individuals_csv(const std::vector<SearchIndividual>& rows,
                            const std::vector<PoolGene>& genes,
                            const std::vector<std::string>& pools);

// summary.md: the best distinct genotypes, each generation's best, mean and worst fitness,
// and `final_section` (the full training of the best genotype, or how to run it).
std::string search_summary_markdown(const std::vector<SearchIndividual>& rows,
                                    const std::vector<PoolGene>& genes,
                                    const std::vector<std::string>& pools, const std::string& title,
                                    const std::string& final_section);

// The individual with the best fitness (the first one of the best, under the tie rule).
const SearchIndividual& best_individual(const std::vector<SearchIndividual>& rows);

}  // namespace convpool
