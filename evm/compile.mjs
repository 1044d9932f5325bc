// Compile LedgerAnchor.sol with solcjs (the npm `solc` package) into the JSON artifact the Python code loads.
//
// Usage: node compile.mjs SOURCE.sol OUT.json   (run from the folder where `npm ci` installed `solc`)
// Why a fixed standard-JSON input: the same source and settings always give the same bytecode, so a test
// can recompile and compare, and a verifier can compare a deployed contract's code with the artifact's.
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename } from 'node:path'

const require = createRequire(`${process.cwd()}/`)
const solc = require('solc')

const [sourcePath, outPath] = process.argv.slice(2)
if (!sourcePath || !outPath) {
  console.error('usage: node compile.mjs SOURCE.sol OUT.json')
  process.exit(2)
}
const source = readFileSync(sourcePath)
const file = basename(sourcePath)
const contractName = file.replace(/\.sol$/, '')
const settings = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } }
}
const input = { language: 'Solidity', sources: { [file]: { content: source.toString('utf8') } }, settings }
const output = JSON.parse(solc.compile(JSON.stringify(input)))
const problems = (output.errors || []).filter((e) => e.severity === 'error' || e.type === 'Warning')
if (problems.length) {
  for (const e of problems) console.error(e.formattedMessage)
  process.exit(1)
}
const compiled = output.contracts[file][contractName]
const artifact = {
  contract: contractName,
  source: file,
  source_sha256: createHash('sha256').update(source).digest('hex'),
  solc_version: solc.version(),
  settings: { optimizer: settings.optimizer, evmVersion: settings.evmVersion },
  abi: compiled.abi,
  bytecode: '0x' + compiled.evm.bytecode.object,
  deployed_bytecode: '0x' + compiled.evm.deployedBytecode.object
}
writeFileSync(outPath, JSON.stringify(artifact, null, 2) + '\n')
