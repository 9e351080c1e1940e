from affectllm.cli import main

main()
